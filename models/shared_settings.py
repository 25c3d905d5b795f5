"""Settings every tier reads: one environment variable and one default each, declared here once.

The pipeline reads them under their plain names (`MAX_TEXT_CHARS`), serving and monitoring under
their own prefix first (`SERVING_MAX_TEXT_CHARS`, `MONITORING_STORE_URL`) and then the plain name.
Each settings class declares the field through `shared_field`, so the name, the default and the
bounds cannot drift apart: raising MAX_TEXT_CHARS moves ingestion's quarantine, the promotion
gate's data check and the service's request limit together. It lives in `models` because every
tier imports it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Generic, TypeVar

from pydantic import AliasChoices, Field

REPO_ROOT = Path(__file__).resolve().parents[1]
T = TypeVar("T")


@dataclass(frozen=True)
class SharedVariable(Generic[T]):
    """An environment variable read by more than one tier, with its default and bounds."""

    name: str
    default: T
    gt: int | None = None
    ge: int | None = None


STORE_URL = SharedVariable(
    "CONVERSATION_STORE_URL", f"sqlite:///{REPO_ROOT / '.lake' / 'conversations.db'}"
)
TRACKING_URI = SharedVariable(
    "MLFLOW_TRACKING_URI", f"sqlite:///{REPO_ROOT / '.mlflow' / 'mlflow.db'}"
)
REGISTRY_URI: SharedVariable[str | None] = SharedVariable("MLFLOW_REGISTRY_URI", None)
MODEL_NAME = SharedVariable("REGISTERED_MODEL_NAME", "intent-classifier")
LAKE_DIR = SharedVariable("LAKE_DIR", REPO_ROOT / ".lake" / "assets")
REPORTS_DIR = SharedVariable("REPORTS_DIR", REPO_ROOT / "reports")
MAX_TEXT_CHARS = SharedVariable("MAX_TEXT_CHARS", 2000, gt=0)


def shared_field(variable: SharedVariable[Any], prefix: str = "", field: str = "") -> Any:
    """A pydantic field for `variable`: `<prefix><FIELD>` wins, else the variable's own name.

    Without a prefix the field must be named after the variable (the pipeline's plain names).
    """
    alias = AliasChoices(f"{prefix}{field.upper()}", variable.name) if prefix else None
    return Field(variable.default, validation_alias=alias, gt=variable.gt, ge=variable.ge)


def is_placeholder(secret: str) -> bool:
    """Whether `secret` still holds a deploy template's placeholder (deploy/k8s/config.yaml).

    The templates are public: a secret left as `CHANGE-ME-...` is known to anyone, however long.
    """
    return "change-me" in secret.lower()

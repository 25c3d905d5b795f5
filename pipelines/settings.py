"""Pipeline settings, read once from the environment (or `.env`); every store is a URL or path."""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from conversations import banking77
from models.location import Location
from models.profile import (
    DAGSTER_STORAGE,
    Profile,
    profile_field,
    require_servers,
    store_and_registry,
)
from models.shared_settings import (
    LAKE_DIR,
    MAX_TEXT_CHARS,
    MODEL_NAME,
    REGISTRY_URI,
    STORE_URL,
    TRACKING_URI,
    shared_field,
)
from models.tracking_store import without_credentials

REPO_ROOT = Path(__file__).resolve().parents[1]
# Used only when BANKING77_DIR is unset and this folder exists (the shared data beside the repo).
DEFAULT_BANKING77_DIR = REPO_ROOT.parent / "shared" / "data" / "banking77"


class ExecutorKind(StrEnum):
    """PIPELINE_EXECUTOR: where a launched run executes its steps (pipelines/executors.py)."""

    IN_PROCESS = "in_process"
    CELERY = "celery"


class PipelineSettings(BaseSettings):
    """Where data comes from and where models, runs and assets go (no prefix: plain env names)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    profile: Profile = profile_field()
    banking77_dir: Path | None = Field(
        default=None,
        description=(
            "Folder with Banking77 train.csv/test.csv. Unset: the shared folder beside the repo "
            "when it exists; empty: no Banking77; a folder that does not exist is refused."
        ),
    )
    labelled_csv_paths: list[Path] = Field(
        default_factory=list, description="Extra labelled utterance CSVs (JSON list of paths)."
    )
    conversation_jsonl_dir: Path = REPO_ROOT / "data" / "incoming"
    # Shared with serving and monitoring: one name and one default (models/shared_settings.py).
    conversation_store_url: str = shared_field(STORE_URL)
    # A local folder or an fsspec URL (s3://bucket/lake): models/location.py.
    lake_dir: Location = shared_field(LAKE_DIR)
    mlflow_tracking_uri: str = shared_field(TRACKING_URI)
    mlflow_registry_uri: str | None = shared_field(REGISTRY_URI)
    mlflow_artifact_root: str | None = Field(
        default=None,
        description=(
            "Artifact root of a new experiment; unset: `artifacts/` beside a SQLite tracking "
            "database, or the tracking server's own (proxied `mlflow-artifacts:/`) root."
        ),
    )
    mlflow_experiment: str = "intent-classifier"
    # Unset: the tracking server itself (it serves the UI), else `mlflow ui` run locally.
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    registered_model_name: str = shared_field(MODEL_NAME)
    # Ingestion's quarantine and the promotion gate's data check (ConversationSources).
    max_text_chars: int = shared_field(MAX_TEXT_CHARS)
    # New labels since the champion was trained before a drift verdict starts a retraining.
    retrain_min_new_labels: int = Field(default=20, ge=0)
    # The new-data sensor: new customer messages (unlabelled) before a training run; any new
    # label or changed source file starts one anyway (pipelines/new_data.py).
    new_data_min_messages: int = Field(default=200, ge=1)
    # Where reports go is monitoring's setting (MonitoringSettings.reports_dir, REPORTS_DIR).
    # Runs launched by the daemon or the UI: in their own process, or step by step on Celery
    # workers through CELERY_BROKER_URL (Redis); results go to CELERY_RESULT_BACKEND, by
    # default the broker. `make pipeline` always executes in its own process.
    pipeline_executor: ExecutorKind = ExecutorKind.IN_PROCESS
    celery_broker_url: str | None = None
    celery_result_backend: str | None = None
    # Dagster's own instance storage: dagster.yaml reads it; checked here under `production`.
    dagster_pg_url: SecretStr | None = None

    @model_validator(mode="before")
    @classmethod
    def _banking77_default(cls, data: Any) -> Any:
        """Unset: the default folder if it exists, else no Banking77. Empty: no Banking77.

        Banking77 is one optional source: a default that is not there is no error, but a folder
        someone configured and mistyped is (`_banking77_folder_exists`).
        """
        if not isinstance(data, dict):
            return data
        if "banking77_dir" not in data:
            default = DEFAULT_BANKING77_DIR if DEFAULT_BANKING77_DIR.is_dir() else None
            return {**data, "banking77_dir": default}
        value = data["banking77_dir"]
        if isinstance(value, str) and not value.strip():
            return {**data, "banking77_dir": None}
        return data

    @field_validator("banking77_dir")
    @classmethod
    def _banking77_folder_exists(cls, value: Path | None) -> Path | None:
        """A configured Banking77 folder must exist (an empty one only contributes no rows)."""
        if value is not None:
            try:
                banking77.require_folder(value)
            except banking77.Banking77NotFound as problem:
                raise ValueError(str(problem)) from None
        return value

    @model_validator(mode="after")
    def _celery_needs_a_broker(self) -> Self:
        """PIPELINE_EXECUTOR=celery without CELERY_BROKER_URL fails at start, not at a run."""
        if self.pipeline_executor is ExecutorKind.CELERY and not self.celery_broker_url:
            raise ValueError("PIPELINE_EXECUTOR=celery needs CELERY_BROKER_URL (e.g. redis://…)")
        return self

    @model_validator(mode="before")
    @classmethod
    def _ui_on_the_tracking_server(cls, data: Any) -> Any:
        """Links to runs point at the tracking server when there is one and no UI URL is set.

        Credentials in the tracking URI are left out: the link is shown in Dagster's UI.
        """
        if not isinstance(data, dict) or data.get("mlflow_ui_url"):
            return data
        tracking = data.get("mlflow_tracking_uri")
        if isinstance(tracking, str) and tracking.startswith(("http://", "https://")):
            return {**data, "mlflow_ui_url": without_credentials(tracking)}
        return data

    @model_validator(mode="after")
    def _production_servers(self) -> PipelineSettings:
        """Under SUPPORTLOOP_PROFILE=production every store must be a server (models/profile.py)."""
        servers = store_and_registry("conversation_store_url")
        require_servers(self, servers | {"dagster_pg_url": DAGSTER_STORAGE})
        return self

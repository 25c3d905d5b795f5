"""Serving settings, read once at start; a bad value fails with its key named."""

from __future__ import annotations

from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


def _env(field: str, shared: str) -> AliasChoices:
    # SERVING_<FIELD> wins; the shared name is the pipeline's (one store, one registry).
    return AliasChoices(f"SERVING_{field.upper()}", shared)


class ServingSettings(BaseSettings):
    """Which model to serve, from where, and the HTTP policies around it."""

    model_config = SettingsConfigDict(
        env_prefix="SERVING_", env_file=".env", extra="ignore", frozen=True
    )

    model_name: str = Field(
        "intent-classifier", validation_alias=_env("model_name", "REGISTERED_MODEL_NAME")
    )
    model_alias: str = "champion"
    mlflow_tracking_uri: str = Field(
        f"sqlite:///{REPO_ROOT / '.mlflow' / 'mlflow.db'}",
        validation_alias=_env("mlflow_tracking_uri", "MLFLOW_TRACKING_URI"),
    )
    mlflow_registry_uri: str | None = Field(
        None, validation_alias=_env("mlflow_registry_uri", "MLFLOW_REGISTRY_URI")
    )
    store_url: str = Field(
        f"sqlite:///{REPO_ROOT / '.lake' / 'conversations.db'}",
        validation_alias=_env("store_url", "CONVERSATION_STORE_URL"),
    )
    max_text_chars: int = Field(
        2000, gt=0, validation_alias=_env("max_text_chars", "MAX_TEXT_CHARS")
    )
    max_batch_items: int = Field(1000, gt=0)
    top_k: int = Field(5, gt=0)
    poll_interval_s: float = Field(30.0, ge=0, description="0 turns registry polling off")
    admin_api_key: SecretStr | None = None
    cors_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    rate_limit_per_s: float = Field(0.0, ge=0, description="0 turns the rate limit off")
    rate_limit_burst: int = Field(20, gt=0)
    workers: int = Field(1, gt=0)
    max_micro_batch: int = Field(64, gt=0, description="most single requests classified together")
    access_log: bool = False
    tracing: bool = False

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> ServingSettings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "SERVING_CORS_ORIGINS may not contain '*' when SERVING_CORS_ALLOW_CREDENTIALS is "
                "true: list the allowed origins"
            )
        return self

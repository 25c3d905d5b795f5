"""Monitoring settings (env MONITORING_*), read once; a bad value fails with its key named."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]
NOTIFIERS = ("log", "smtp", "webhook")


def _shared(field: str, name: str) -> AliasChoices:
    return AliasChoices(f"MONITORING_{field.upper()}", name)


class MonitoringSettings(BaseSettings):
    """What window to watch, what counts as drift, where reports and alerts go."""

    model_config = SettingsConfigDict(
        env_prefix="MONITORING_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    store_url: str = Field(
        f"sqlite:///{REPO_ROOT / '.lake' / 'conversations.db'}",
        validation_alias=_shared("store_url", "CONVERSATION_STORE_URL"),
    )
    mlflow_tracking_uri: str = Field(
        f"sqlite:///{REPO_ROOT / '.mlflow' / 'mlflow.db'}",
        validation_alias=_shared("mlflow_tracking_uri", "MLFLOW_TRACKING_URI"),
    )
    mlflow_registry_uri: str | None = Field(
        None, validation_alias=_shared("mlflow_registry_uri", "MLFLOW_REGISTRY_URI")
    )
    model_name: str = Field(
        "intent-classifier", validation_alias=_shared("model_name", "REGISTERED_MODEL_NAME")
    )
    experiment: str = "intent-monitoring"
    lake_dir: Path = Field(
        REPO_ROOT / ".lake" / "assets", validation_alias=_shared("lake_dir", "LAKE_DIR")
    )
    reports_dir: Path = REPO_ROOT / "reports"

    # The current window: the last `window_hours`, or [window_start, window_end).
    window_hours: float = Field(24.0, gt=0)
    window_start: datetime | None = None
    window_end: datetime | None = None
    sample_size: int = Field(5000, gt=100, description="most messages per side in the report")
    min_messages: int = Field(30, gt=0, description="fewer current messages: not judged")
    min_labels: int = Field(30, gt=0, description="labels needed to judge performance")

    # Drift conditions (any one gives `drift`).
    intent_js_threshold: float = Field(0.1, gt=0, le=1)
    fallback_rate_increase: float = Field(0.05, gt=0, le=1)
    confidence_drop: float = Field(0.05, gt=0, le=1)
    column_distance_threshold: float = Field(
        0.1, gt=0, le=1, description="Wasserstein (normed) / Jensen-Shannon per column"
    )
    text_drift_threshold: float = Field(0.55, gt=0.5, le=1, description="domain-classifier ROC AUC")
    # `degraded`: labelled accuracy this far below the champion's test accuracy.
    max_accuracy_drop: float = Field(0.05, gt=0, le=1)

    notifiers: list[str] = Field(default_factory=lambda: ["log"])
    smtp_host: str = "localhost"
    smtp_port: int = 25
    smtp_from: str = "supportloop@localhost"
    smtp_to: list[str] = Field(default_factory=list)
    smtp_user: str | None = None
    smtp_password: SecretStr | None = None
    webhook_url: str | None = None

    monitoring_cron: str = "0 6 * * *"
    retraining_cron: str = "0 3 * * 1"
    retrain_min_new_labels: int = Field(20, ge=0)

    @field_validator("notifiers")
    @classmethod
    def _known_notifiers(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(NOTIFIERS))
        if unknown:
            raise ValueError(f"MONITORING_NOTIFIERS: unknown {unknown}; known: {list(NOTIFIERS)}")
        return names

    @model_validator(mode="after")
    def _notifier_targets(self) -> MonitoringSettings:
        if "smtp" in self.notifiers and not self.smtp_to:
            raise ValueError("MONITORING_SMTP_TO is required when MONITORING_NOTIFIERS has smtp")
        if "webhook" in self.notifiers and not self.webhook_url:
            raise ValueError(
                "MONITORING_WEBHOOK_URL is required when MONITORING_NOTIFIERS has webhook"
            )
        if self.window_start and self.window_end and self.window_start >= self.window_end:
            raise ValueError("MONITORING_WINDOW_START must be before MONITORING_WINDOW_END")
        return self

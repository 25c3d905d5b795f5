"""Monitoring settings (env MONITORING_*), read once; a bad value fails with its key named."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.location import Location
from models.profile import (
    Profile,
    profile_field,
    require_servers,
    store_and_registry,
)
from models.shared_settings import (
    LAKE_DIR,
    MODEL_NAME,
    REGISTRY_URI,
    REPORTS_DIR,
    STORE_URL,
    TRACKING_URI,
    SharedVariable,
    shared_field,
)

NOTIFIERS = ("log", "smtp", "webhook")


def _shared(variable: SharedVariable[Any], field: str) -> Any:
    return shared_field(variable, "MONITORING_", field)


class MonitoringSettings(BaseSettings):
    """What window to watch, what counts as drift, where reports and alerts go."""

    model_config = SettingsConfigDict(
        env_prefix="MONITORING_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        populate_by_name=True,
    )

    profile: Profile = profile_field()
    # Shared with the pipeline and serving (models/shared_settings.py): MONITORING_<FIELD> wins.
    store_url: str = _shared(STORE_URL, "store_url")
    mlflow_tracking_uri: str = _shared(TRACKING_URI, "mlflow_tracking_uri")
    mlflow_registry_uri: str | None = _shared(REGISTRY_URI, "mlflow_registry_uri")
    model_name: str = _shared(MODEL_NAME, "model_name")
    experiment: str = "intent-monitoring"
    # Local folders or fsspec URLs (s3://bucket/reports): models/location.py.
    lake_dir: Location = _shared(LAKE_DIR, "lake_dir")
    reports_dir: Location = _shared(REPORTS_DIR, "reports_dir")
    # Where REPORTS_DIR is published for people (https://reports.example.com/drift): alerts and
    # Dagster link there instead of to a path or an s3:// URL no browser opens.
    reports_url: str | None = None
    # The Evidently workspace every run's snapshot goes to (trends across runs, `make
    # monitor-ui`). Unset: `evidently_workspace/` in a local REPORTS_DIR; none for a remote one.
    evidently_workspace: Path | None = None

    # The current window: the last `window_hours`, or [window_start, window_end).
    window_hours: float = Field(24.0, gt=0)
    window_start: datetime | None = None
    window_end: datetime | None = None
    sample_size: int = Field(5000, gt=100, description="most messages per side in the report")
    min_messages: int = Field(30, gt=0, description="fewer current messages: not judged")
    min_labels: int = Field(30, gt=0, description="labels needed to judge performance")
    # New intents, found (monitoring/new_intents.py): the window's fallback messages clustered.
    new_intent_min_cluster_size: int = Field(5, ge=2, description="fewest messages per cluster")
    new_intent_max_messages: int = Field(2000, ge=10, description="most clustered (the newest)")

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

    @field_validator("notifiers")
    @classmethod
    def _known_notifiers(cls, names: list[str]) -> list[str]:
        unknown = sorted(set(names) - set(NOTIFIERS))
        if unknown:
            raise ValueError(f"MONITORING_NOTIFIERS: unknown {unknown}; known: {list(NOTIFIERS)}")
        return names

    @field_validator("reports_url")
    @classmethod
    def _web_url(cls, url: str | None) -> str | None:
        if url and (urlsplit(url).scheme not in ("http", "https") or not urlsplit(url).netloc):
            raise ValueError(f"MONITORING_REPORTS_URL: {url!r} is not an http(s):// URL")
        return url or None

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

    @model_validator(mode="after")
    def _production_servers(self) -> MonitoringSettings:
        """Under SUPPORTLOOP_PROFILE=production every store must be a server (models/profile.py)."""
        require_servers(self, store_and_registry("store_url"))
        return self

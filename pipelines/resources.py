"""Dagster resources: the conversation sources, the MLflow registry, monitoring and alerts."""

import hashlib
import os
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import sqlalchemy as sa
from upath import UPath

from conversations import banking77, store_engine, tables
from conversations.raw_rows import raw_frame
from conversations.readers import (
    read_conversation_jsonl,
    read_conversation_store,
    read_labelled_csv,
)
from models.location import location
from models.registry import IntentRegistry, RegistryConfig
from models.shared_settings import MAX_TEXT_CHARS
from monitoring.alerts import Alert, AlertTargets, deliver
from monitoring.settings import MonitoringSettings
from pipelines.conversation_log import LogLake, LogSources
from pipelines.new_data import NewDataState, read_state
from pipelines.source_report import SourceConfig

PASSWORD_VARIABLE = "MONITORING_SMTP_PASSWORD"
# A webhook URL (Slack's, Teams') is itself the credential to post to the channel.
WEBHOOK_VARIABLE = "MONITORING_WEBHOOK_URL"


class ConversationSources(dg.ConfigurableResource):
    """Labelled CSV files, a folder of conversation JSONL files and the chat tier's SQL store."""

    banking77_dir: str | None = None
    csv_paths: list[str] = []
    jsonl_dir: str | None = None
    store_url: str | None = None
    # Longest text kept (MAX_TEXT_CHARS): ingestion quarantines longer rows, the gate checks it.
    max_text_chars: int = MAX_TEXT_CHARS.default
    # Where the daily partitions of the conversation log and the JSONL day index are kept:
    # a local folder or an fsspec URL (models/location.py).
    lake_dir: str | None = None
    # New customer messages before the new-data sensor asks for a run (NEW_DATA_MIN_MESSAGES).
    new_data_min_messages: int = 200

    def banking77_csvs(self) -> list[Path]:
        """Banking77's CSV files: none when it is off (unset or empty); a missing folder fails."""
        return banking77.csv_paths(Path(self.banking77_dir)) if self.banking77_dir else []

    def labelled_csvs(self) -> list[Path]:
        """Every labelled CSV to read (Banking77 first)."""
        return [*self.banking77_csvs(), *(Path(path) for path in self.csv_paths)]

    def config(self) -> SourceConfig:
        """The sources as configured, named as their rows' lineage names them."""
        # Named as conversations.store_reader.store_source names it: the password hidden.
        url = sa.make_url(self.store_url) if self.store_url else None
        return SourceConfig(
            banking77_dir=self.banking77_dir or None,
            banking77_files=tuple(_lineage(path) for path in self.banking77_csvs()),
            csv_files=tuple(_lineage(Path(path)) for path in self.csv_paths),
            jsonl_dir=self.jsonl_dir,
            jsonl_files=tuple(path.name for path in self.jsonl_files()),
            store=url.render_as_string(hide_password=True) if url else None,
        )

    def jsonl_files(self) -> list[Path]:
        """Conversation JSONL files currently in the folder, in name order."""
        if not self.jsonl_dir or not Path(self.jsonl_dir).is_dir():
            return []
        return sorted(Path(self.jsonl_dir).glob("*.jsonl"))

    def read_labelled(self) -> pd.DataFrame:
        """Raw rows of the labelled CSVs (not partitioned: they carry no time)."""
        frames = [
            read_labelled_csv(path, source_name=_lineage(path)) for path in self.labelled_csvs()
        ]
        return pd.concat(frames, ignore_index=True) if frames else raw_frame([])

    def log_sources(self) -> LogSources:
        """The time-partitioned sources: the JSONL files and the chat store."""
        return LogSources(tuple(self.jsonl_files()), self.store_url, self._lake())

    def log_lake(self) -> LogLake:
        """Where the conversation log's days are kept."""
        return LogLake(self._lake())

    def _lake(self) -> UPath:
        if self.lake_dir is None:
            raise ValueError("ConversationSources.lake_dir is not set (where the log's days go)")
        return location(self.lake_dir)

    def read_all(self) -> pd.DataFrame:
        """Raw rows of every source, each with its lineage (source, line)."""
        frames = [
            read_labelled_csv(path, source_name=f"{path.parent.name}/{path.name}")
            for path in self.labelled_csvs()
        ]
        frames += [read_conversation_jsonl(path) for path in self.jsonl_files()]
        if self.store_url:
            frames.append(read_conversation_store(self.store_url))
        frames = [frame for frame in frames if not frame.empty]
        if not frames:
            raise ValueError("no conversation rows in any configured source")
        return pd.concat(frames, ignore_index=True)

    def new_data_state(self) -> NewDataState:
        """What the new-data sensor compares: source files' fingerprint, message/label counts."""
        return read_state([*self.labelled_csvs(), *self.jsonl_files()], self.store_url)

    def fingerprint(self) -> str:
        """Changes whenever a source file changes or the store gains messages or labels."""
        parts = [
            f"{path}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
            for path in [*self.labelled_csvs(), *self.jsonl_files()]
        ]
        if self.store_url:
            engine = store_engine.create_engine(self.store_url)
            with engine.connect() as connection:
                for table in (tables.messages, tables.labels):
                    count = connection.execute(
                        sa.select(sa.func.count()).select_from(table)
                    ).scalar()
                    newest = connection.execute(sa.select(sa.func.max(table.c.ts))).scalar()
                    parts.append(f"{table.name}:{count}:{newest}")
            engine.dispose()
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def _lineage(path: Path) -> str:
    """A labelled CSV's `source` on its rows: `folder/file`."""
    return f"{path.parent.name}/{path.name}"


class MlflowRegistry(dg.ConfigurableResource):
    """MLflow tracking and model registry (SQLite by default; any tracking server by URI)."""

    tracking_uri: str
    registry_uri: str | None = None
    artifact_root: str | None = None
    experiment_name: str = "intent-classifier"
    model_name: str = "intent-classifier"
    ui_url: str = "http://127.0.0.1:5000"

    def registry(self) -> IntentRegistry:
        """A registry client for the intent model."""
        return IntentRegistry(RegistryConfig(self.tracking_uri, self.registry_uri, self.model_name))

    def run_url(self, experiment_id: str, run_id: str) -> str:
        """Link to the run in the MLflow UI."""
        return f"{self.ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}"


class MonitoringResource(dg.ConfigurableResource):
    """Where monitoring reads and writes, and the retraining threshold of the drift sensor.

    The values come from the settings (definitions.py); thresholds, sampling and notifiers are
    read from MonitoringSettings when a run starts, so nothing here has a default of its own
    to drift from them.
    """

    store_url: str
    reports_dir: str
    lake_dir: str
    retrain_min_new_labels: int

    def settings(
        self,
        registry: "MlflowRegistry",
        window_hours: float | None = None,
        window_start: str | None = None,
        window_end: str | None = None,
    ) -> MonitoringSettings:
        """Monitoring settings for one run; a window left unset is the settings' own."""
        # Keyword overrides that pydantic parses (e.g. an ISO string into a datetime).
        window: dict[str, Any] = {
            "window_hours": window_hours,
            "window_start": window_start,
            "window_end": window_end,
        }
        return MonitoringSettings(
            store_url=self.store_url,
            reports_dir=self.reports_dir,
            lake_dir=self.lake_dir,
            mlflow_tracking_uri=registry.tracking_uri,
            mlflow_registry_uri=registry.registry_uri,
            model_name=registry.model_name,
            **{name: value for name, value in window.items() if value is not None},
        )


class AlertNotifier(dg.ConfigurableResource):
    """Where alerts go: MONITORING_NOTIFIERS and their targets, given by the definitions.

    The promotion gate alerts through this resource instead of reading the environment inside
    the asset; a run's launchpad can point it elsewhere. Sending lives in monitoring/alerts.py.
    """

    notifiers: list[str]
    smtp_host: str
    smtp_port: int
    smtp_from: str
    smtp_to: list[str]
    smtp_user: str | None = None
    smtp_password: str | None = None
    webhook_url: str | None = None

    @classmethod
    def from_settings(cls, settings: MonitoringSettings) -> "AlertNotifier":
        """The notifier the monitoring settings describe."""
        targets = AlertTargets.from_settings(settings)
        password: str | None = targets.smtp_password
        if password is not None and PASSWORD_VARIABLE in os.environ:
            # Resolved when a run starts: the Dagster UI shows the variable's name, not the value.
            password = dg.EnvVar(PASSWORD_VARIABLE)
        webhook_url = targets.webhook_url
        if webhook_url is not None and os.environ.get(WEBHOOK_VARIABLE) == webhook_url:
            webhook_url = dg.EnvVar(WEBHOOK_VARIABLE)
        return cls(
            notifiers=list(targets.notifiers),
            smtp_host=targets.smtp_host,
            smtp_port=targets.smtp_port,
            smtp_from=targets.smtp_from,
            smtp_to=list(targets.smtp_to),
            smtp_user=targets.smtp_user,
            smtp_password=password,
            webhook_url=webhook_url,
        )

    def send(self, alert: Alert) -> dict[str, str]:
        """Send through every notifier; returns `sent` or the error per notifier."""
        targets = AlertTargets(
            notifiers=tuple(self.notifiers),
            smtp_host=self.smtp_host,
            smtp_port=self.smtp_port,
            smtp_from=self.smtp_from,
            smtp_to=tuple(self.smtp_to),
            smtp_user=self.smtp_user,
            smtp_password=self.smtp_password,
            webhook_url=self.webhook_url,
        )
        return deliver(targets, alert)

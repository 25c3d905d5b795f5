"""Dagster resources: the conversation sources and the MLflow registry."""

import hashlib
from pathlib import Path

import dagster as dg
import pandas as pd
import sqlalchemy as sa

from conversations import banking77, tables
from conversations.readers import (
    read_conversation_jsonl,
    read_conversation_store,
    read_labelled_csv,
)
from models.registry import IntentRegistry, RegistryConfig
from monitoring.settings import MonitoringSettings


class ConversationSources(dg.ConfigurableResource):
    """Labelled CSV files, a folder of conversation JSONL files and the chat tier's SQL store."""

    banking77_dir: str | None = None
    csv_paths: list[str] = []
    jsonl_dir: str | None = None
    store_url: str | None = None
    max_text_chars: int = 2000

    def labelled_csvs(self) -> list[Path]:
        """Every labelled CSV to read (Banking77 first)."""
        paths = banking77.csv_paths(Path(self.banking77_dir)) if self.banking77_dir else []
        return [*paths, *(Path(path) for path in self.csv_paths)]

    def jsonl_files(self) -> list[Path]:
        """Conversation JSONL files currently in the folder, in name order."""
        if not self.jsonl_dir or not Path(self.jsonl_dir).is_dir():
            return []
        return sorted(Path(self.jsonl_dir).glob("*.jsonl"))

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

    def fingerprint(self) -> str:
        """Changes whenever a source file changes or the store gains messages or labels."""
        parts = [
            f"{path}:{path.stat().st_size}:{path.stat().st_mtime_ns}"
            for path in [*self.labelled_csvs(), *self.jsonl_files()]
        ]
        if self.store_url:
            engine = tables.create_engine(self.store_url)
            with engine.connect() as connection:
                for table in (tables.messages, tables.labels):
                    count = connection.execute(
                        sa.select(sa.func.count()).select_from(table)
                    ).scalar()
                    newest = connection.execute(sa.select(sa.func.max(table.c.ts))).scalar()
                    parts.append(f"{table.name}:{count}:{newest}")
            engine.dispose()
        return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


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
    """Where reports go and what counts as drift (env MONITORING_* for everything else)."""

    store_url: str
    reports_dir: str
    lake_dir: str
    retrain_min_new_labels: int = 20

    def settings(
        self,
        registry: "MlflowRegistry",
        window_hours: float = 24.0,
        window_start: str | None = None,
        window_end: str | None = None,
    ) -> MonitoringSettings:
        """Monitoring settings for one run."""
        return MonitoringSettings(
            store_url=self.store_url,
            reports_dir=self.reports_dir,
            lake_dir=self.lake_dir,
            mlflow_tracking_uri=registry.tracking_uri,
            mlflow_registry_uri=registry.registry_uri,
            model_name=registry.model_name,
            window_hours=window_hours,
            window_start=window_start,
            window_end=window_end,
        )

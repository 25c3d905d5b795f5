"""Pipeline settings, read once from the environment (or `.env`); every store is a URL or path."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

REPO_ROOT = Path(__file__).resolve().parents[1]


class PipelineSettings(BaseSettings):
    """Where data comes from and where models, runs and assets go (no prefix: plain env names)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    banking77_dir: Path | None = Field(
        default=REPO_ROOT.parent / "shared" / "data" / "banking77",
        description="Folder with Banking77 train.csv/test.csv; empty to train without it.",
    )
    labelled_csv_paths: list[Path] = Field(
        default_factory=list, description="Extra labelled utterance CSVs (JSON list of paths)."
    )
    conversation_jsonl_dir: Path = REPO_ROOT / "data" / "incoming"
    conversation_store_url: str = f"sqlite:///{REPO_ROOT / '.lake' / 'conversations.db'}"
    lake_dir: Path = REPO_ROOT / ".lake" / "assets"
    mlflow_tracking_uri: str = f"sqlite:///{REPO_ROOT / '.mlflow' / 'mlflow.db'}"
    mlflow_registry_uri: str | None = None
    mlflow_artifact_root: str = str(REPO_ROOT / ".mlflow" / "artifacts")
    mlflow_experiment: str = "intent-classifier"
    mlflow_ui_url: str = "http://127.0.0.1:5000"
    registered_model_name: str = "intent-classifier"
    max_text_chars: int = Field(default=2000, gt=0)
    reports_dir: Path = REPO_ROOT / "reports"
    retrain_min_new_labels: int = Field(default=20, ge=0)

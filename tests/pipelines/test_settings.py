import json

import dagster as dg
import pytest
from pydantic import ValidationError

from models.registry import IntentRegistry, RegistryConfig
from models.splits import assign_splits
from pipelines import cli
from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings
from tests.conftest import register_version


def test_bad_config_value_fails_at_start_naming_the_key(monkeypatch):
    monkeypatch.setenv("MAX_TEXT_CHARS", "-5")
    with pytest.raises(ValidationError, match="max_text_chars"):
        PipelineSettings()


def test_stores_are_chosen_by_url(monkeypatch):
    monkeypatch.setenv("CONVERSATION_STORE_URL", "postgresql+psycopg://u:p@db/chat")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    settings = PipelineSettings()
    assert settings.conversation_store_url.startswith("postgresql")
    assert settings.mlflow_tracking_uri == "http://mlflow.internal:5000"


@pytest.mark.slow
def test_raising_max_text_chars_does_not_fail_the_gate(tmp_path, monkeypatch, small_slice):
    """MAX_TEXT_CHARS drives ingestion and the gate's data check alike: a kept long text passes."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    version = register_version(small_slice, IntentRegistry(RegistryConfig(uri)), tmp_path / "art")
    examples = small_slice.rename(columns={"category": "intent"}).assign(context="{}")
    examples["split"] = assign_splits(examples["text"].tolist(), examples["intent"].tolist())
    long_text = "my card has not arrived yet " * 90  # 2,520 characters: over the 2,000 default
    examples.loc[len(examples)] = [long_text, examples["intent"].iloc[0], "{}", "train"]
    lake = tmp_path / "lake"
    lake.mkdir()
    examples.to_parquet(lake / "training_examples.parquet", index=False)
    (lake / "intent_model.json").write_text(json.dumps({"version": version}))
    monkeypatch.setenv("MAX_TEXT_CHARS", "3000")
    settings = PipelineSettings(lake_dir=lake, mlflow_tracking_uri=uri, mlflow_registry_uri=uri)
    job = build_definitions(settings).resolve_implicit_global_asset_job_def()
    (tmp_path / "dagster_home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "dagster_home")) as instance:
        result = job.execute_in_process(
            instance=instance, asset_selection=[dg.AssetKey("model_promotion")]
        )
    decided = cli.materialization_metadata(result)["model_promotion"]
    checks = {check["name"]: check for check in decided["checks"]}
    assert checks["data_quality"]["passed"] is True, checks["data_quality"]


def test_the_definitions_take_monitoring_settings_from_one_place(monkeypatch, tmp_path):
    """Reports folder, crons and alert targets: MONITORING_* for both schedulers and the UI."""
    monkeypatch.setenv("MONITORING_REPORTS_DIR", str(tmp_path / "reports"))
    monkeypatch.setenv("MONITORING_MONITORING_CRON", "30 5 * * *")
    monkeypatch.setenv("MONITORING_NOTIFIERS", '["log", "webhook"]')
    monkeypatch.setenv("MONITORING_WEBHOOK_URL", "http://127.0.0.1:9/hook")
    defs = build_definitions(PipelineSettings())
    assert defs.resources["monitoring"].reports_dir == str(tmp_path / "reports")
    assert defs.resolve_schedule_def("daily_monitoring").cron_schedule == "30 5 * * *"
    notifier = defs.resources["notifier"]
    assert notifier.notifiers == ["log", "webhook"]
    # Shown as its variable on the resource page (tests/pipelines/test_resources.py).
    assert notifier.webhook_url == dg.EnvVar("MONITORING_WEBHOOK_URL")


def test_run_links_point_at_the_tracking_server_without_its_credentials(monkeypatch):
    monkeypatch.delenv("MLFLOW_UI_URL", raising=False)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "https://ci:secret@mlflow.example:8443/base")
    assert PipelineSettings().mlflow_ui_url == "https://mlflow.example:8443/base"
    monkeypatch.setenv("MLFLOW_UI_URL", "https://ui.example")
    assert PipelineSettings().mlflow_ui_url == "https://ui.example"
    monkeypatch.delenv("MLFLOW_UI_URL")
    local = PipelineSettings(mlflow_tracking_uri="sqlite:///x.db")
    assert local.mlflow_ui_url == "http://127.0.0.1:5000"  # `mlflow ui` beside a SQLite store

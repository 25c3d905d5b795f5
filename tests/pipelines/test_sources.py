"""Banking77 is one optional source: any non-empty combination of sources trains, none says so.

Settings are read from a patched environment; the ingestion and example assets run in real
Dagster on files in a temporary folder, and `make pipeline`'s entry point prints the cause.
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from models.settings_errors import SettingsProblem, load_settings
from pipelines import cli
from pipelines import settings as settings_module
from pipelines.assets.features import training_examples
from pipelines.assets.ingestion import conversation_log, raw_conversations, validated_conversations
from pipelines.io_manager import LakeIOManager
from pipelines.partitions import last_key
from pipelines.resources import ConversationSources, MlflowRegistry
from pipelines.settings import PipelineSettings

ASSETS = [conversation_log, raw_conversations, validated_conversations, training_examples]


def test_an_empty_banking77_dir_turns_banking77_off(monkeypatch):
    monkeypatch.setenv("BANKING77_DIR", "")
    assert PipelineSettings().banking77_dir is None


def test_the_default_folder_is_used_only_when_it_exists(monkeypatch, tmp_path):
    monkeypatch.delenv("BANKING77_DIR", raising=False)
    monkeypatch.setattr(settings_module, "DEFAULT_BANKING77_DIR", tmp_path / "absent")
    assert PipelineSettings().banking77_dir is None
    monkeypatch.setattr(settings_module, "DEFAULT_BANKING77_DIR", tmp_path)
    assert PipelineSettings().banking77_dir == tmp_path


def test_a_configured_folder_that_does_not_exist_is_a_config_error(monkeypatch, tmp_path):
    monkeypatch.setenv("BANKING77_DIR", str(tmp_path / "typo"))
    with pytest.raises(SettingsProblem) as problem:
        load_settings(PipelineSettings)
    message = str(problem.value)
    assert "BANKING77_DIR" in message and "does not exist" in message and "\n" not in message
    assert "BANKING77_DIR= (empty)" in message


def _materialize(sources: ConversationSources, lake: Path) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ASSETS,
        resources={
            "sources": sources,
            "io_manager": LakeIOManager(base_dir=str(lake)),
            # training_examples applies the retrain rule when it can (never here: no training).
            "mlflow_registry": MlflowRegistry(tracking_uri=f"sqlite:///{lake.parent / 'ml.db'}"),
        },
        partition_key=last_key(),
        raise_on_error=False,
    )


def test_an_empty_banking77_folder_with_another_labelled_source_trains(tmp_path):
    (tmp_path / "banking77").mkdir()
    labelled = tmp_path / "mine.csv"
    labelled.write_text(
        "text,category\nwhere is my parcel,parcel_status\nrefund my order,refund\n",
        encoding="utf-8",
    )
    sources = ConversationSources(
        banking77_dir=str(tmp_path / "banking77"),
        csv_paths=[str(labelled)],
        lake_dir=str(tmp_path / "lake"),
    )
    result = _materialize(sources, tmp_path / "lake")
    assert result.success
    examples = result.asset_value("training_examples")
    assert sorted(examples["intent"]) == ["parcel_status", "refund"]


def test_no_labelled_message_anywhere_is_one_line_naming_the_sources(tmp_path, monkeypatch, capsys):
    inbox = tmp_path / "incoming"
    inbox.mkdir()
    turn = {"conversation_id": "c-1", "speaker": "customer", "ts": "2026-11-01T10:00:00Z"}
    lines = [
        json.dumps(turn | {"message_id": "m-1", "text": "hello there"}),
        json.dumps(turn | {"message_id": "m-2", "text": "hi", "speaker": "bot"}),
    ]
    (inbox / "unlabelled.jsonl").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (tmp_path / "banking77").mkdir()
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    settings = PipelineSettings(
        banking77_dir=tmp_path / "banking77",
        labelled_csv_paths=[],
        conversation_jsonl_dir=inbox,
        conversation_store_url=f"sqlite:///{tmp_path / 'store.db'}",
        lake_dir=tmp_path / "lake",
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    assert cli.materialize(settings) == 1
    out = capsys.readouterr().out
    cause = [line for line in out.splitlines() if line.startswith("cause: ")]
    assert len(cause) == 1 and "Traceback" not in out
    assert cause[0] == (
        "cause: training_examples: Failure: no labelled customer messages in any source "
        "(BANKING77_DIR 0 files; LABELLED_CSV_PATHS off; CONVERSATION_JSONL_DIR 1 file, 2 rows, "
        "0 labelled; CONVERSATION_STORE_URL 0 rows): point one at labelled data (data/README.md)"
    )


def test_no_source_at_all_says_the_same(tmp_path):
    sources = ConversationSources(lake_dir=str(tmp_path / "lake"))
    result = _materialize(sources, tmp_path / "lake")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message
    assert "Failure: no labelled customer messages in any source (BANKING77_DIR off;" in message

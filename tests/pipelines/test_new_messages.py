"""`conversations` counts new and gone messages by id, not by the change of its row count.

Real Dagster in-process on SQLite, ingestion assets only (no model is fitted).
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pytest

from pipelines.settings import PipelineSettings
from tests.pipelines.test_incremental import INTENTS, _message, _metadata, _run


@pytest.fixture()
def settings(tmp_path: Path) -> PipelineSettings:
    (tmp_path / "incoming").mkdir()
    return PipelineSettings(
        banking77_dir=None,
        labelled_csv_paths=[],
        conversation_jsonl_dir=tmp_path / "incoming",
        conversation_store_url=f"sqlite:///{tmp_path / 'store.db'}",
        lake_dir=tmp_path / "lake",
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )


@pytest.fixture()
def instance(tmp_path: Path):
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        yield instance


def _write_day(settings: PipelineSettings, ids: list[str]) -> None:
    lines = [
        json.dumps(_message(mid, "2026-11-20", INTENTS[i % 3], f"question {mid}"))
        for i, mid in enumerate(ids)
    ]
    path = Path(settings.conversation_jsonl_dir) / "2026-11-20.jsonl"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def test_a_replaced_message_is_one_added_and_one_removed(settings, instance):
    _write_day(settings, ["m1", "m2", "m3", "m4"])
    first = _metadata(_run(settings, instance), "conversations")
    assert (first["rows_added"], first["rows_removed"]) == (4, 0)

    # Same number of rows, one message swapped for a new one: a row count sees nothing.
    _write_day(settings, ["m1", "m2", "m3", "m5"])
    second = _metadata(_run(settings, instance), "conversations")
    assert second["rows_kept"] == 4
    assert (second["rows_added"], second["rows_removed"]) == (1, 1)

    unchanged = _metadata(_run(settings, instance), "conversations")
    assert (unchanged["rows_added"], unchanged["rows_removed"]) == (0, 0)

"""LAKE_DIR as a URL: the conversation log's days, fingerprints and assets all live there.

Real Dagster in-process runs of the ingestion assets and `training_examples` (as in
test_incremental.py) with the lake at a `file://` URL and at `memory://` (fsspec's in-process
object store). The second run reads only the new day, so each day's fingerprint and the JSONL
day index were read back from the URL; the working directory stays empty, which is where a URL
taken for a relative path would have written. `s3://` end to end: test_object_store.py.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import dagster as dg
import pytest
from upath import UPath

from models.location import read_parquet
from pipelines.settings import PipelineSettings
from tests.pipelines.test_incremental import (
    INTENTS,
    _days_materialised,
    _message,
    _metadata,
    _run,
    _store_messages,
)


def _lake_url(kind: str, tmp_path: Path) -> str:
    if kind == "file":
        return f"file://{tmp_path / 'lake'}"
    return f"memory://lake-{uuid.uuid4().hex[:8]}"


@pytest.mark.parametrize("kind", ["file", "memory"])
def test_the_log_and_the_assets_live_at_the_lake_url(kind: str, tmp_path: Path, monkeypatch):
    csv_dir, incoming, workdir = tmp_path / "banking77", tmp_path / "incoming", tmp_path / "cwd"
    for folder in (csv_dir, incoming, workdir, tmp_path / "home"):
        folder.mkdir()
    rows = [f"how do I {intent} number {i},{intent}" for i in range(6) for intent in INTENTS]
    (csv_dir / "train.csv").write_text("text,category\n" + "\n".join(rows) + "\n")
    lines = [_message(f"j-{i}", "2026-11-20", INTENTS[i % 3], f"jsonl text {i}") for i in range(6)]
    (incoming / "first.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    _store_messages(store_url, "2026-11-21", 6)
    lake = _lake_url(kind, tmp_path)
    settings = PipelineSettings(
        banking77_dir=csv_dir,
        labelled_csv_paths=[],
        conversation_jsonl_dir=incoming,
        conversation_store_url=store_url,
        lake_dir=lake,
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    assert str(settings.lake_dir) == lake
    monkeypatch.chdir(workdir)

    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        first = _run(settings, instance, "training_examples")
        assert _days_materialised(first) == ["2026-11-20", "2026-11-21"]
        _store_messages(store_url, "2026-11-23", 9)
        second = _run(settings, instance, "training_examples")
        assert _days_materialised(second) == ["2026-11-23"]
        assert _metadata(second, "conversations")["rows_kept"] == 18 + 6 + 6 + 9
        third = _run(settings, instance)
        assert _metadata(third, "conversation_log")["days_read"] == 0

    base = UPath(lake)
    log = base / "conversation_log"
    assert sorted(path.parent.name for path in log.glob("*/summary.json")) == [
        "2026-11-20",
        "2026-11-21",
        "2026-11-23",
    ]
    assert str(incoming / "first.jsonl") in json.loads((log / "_jsonl_days.json").read_text())
    examples = read_parquet(base / "training_examples.parquet")
    assert {"s-2026-11-21-0", "s-2026-11-23-8", "j-5"} <= set(examples["message_id"])
    assert list(workdir.iterdir()) == []

"""The ingestion assets on fuzzed files (real Dagster): every row accounted for in the metadata."""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd

from conversations.lines import MAX_ROW_CHARS
from pipelines.assets.ingestion import (
    conversation_log,
    raw_conversations,
    validated_conversations,
)
from pipelines.io_manager import LakeIOManager
from pipelines.partitions import last_key
from pipelines.resources import ConversationSources

GOOD = {"conversation_id": "c-1", "speaker": "customer", "text": "where is my card"}


def _fuzzed_sources(root: Path) -> ConversationSources:
    csv_path = root / "labelled.csv"
    csv_path.write_text(
        "text,category\n"
        "Where is my card?,card_arrival\n"
        '"I was charged twice,extra_charge\n'  # unclosed quote: the next lines are read again
        "How do I top up?,top_up\n"
        + "x"
        * (MAX_ROW_CHARS + 1)
        + ",card_arrival\n"  # a field over 128 KiB
        "hello, world,greeting\n"  # one value too many
        "nul\x00byte,card_arrival\n",
        encoding="utf-8",
    )
    jsonl_dir = root / "incoming"
    jsonl_dir.mkdir()
    lines = [
        json.dumps(GOOD | {"message_id": "m-1"}),
        json.dumps(GOOD | {"message_id": "m-2", "text": 42}),
        json.dumps(GOOD | {"message_id": "m-3", "turn": "1"}),
        "[1, 2]",
        "1" + "0" * 5000,
    ]
    (jsonl_dir / "batch.jsonl").write_text("\r".join(lines) + "\r", encoding="utf-8")
    return ConversationSources(
        csv_paths=[str(csv_path)], jsonl_dir=str(jsonl_dir), lake_dir=str(root / "lake")
    )


def test_fuzzed_rows_are_quarantined_with_reasons_and_the_counts_reconcile(tmp_path):
    # The JSONL rows carry no timestamp: they belong to the day the file was written, today.
    result = dg.materialize(
        [conversation_log, raw_conversations, validated_conversations],
        resources={
            "sources": _fuzzed_sources(tmp_path),
            "io_manager": LakeIOManager(base_dir=str(tmp_path / "lake")),
        },
        partition_key=last_key(),
    )
    assert result.success
    metadata = {
        event.asset_key.to_user_string(): {
            key: value.value
            for key, value in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }
    raw, kept = metadata["raw_conversations"], metadata["conversations"]
    log = metadata["conversation_log"]
    assert raw["row_count"] + log["rows_in"] == kept["rows_in"] == 11
    assert log["rows_in"] == log["rows_kept"] + log["rows_quarantined"] == 5
    assert kept["rows_in"] == kept["rows_kept"] + kept["rows_quarantined"]
    assert kept["rows_kept"] == 3  # two CSV rows around the broken quote, one JSONL line
    assert kept["quarantine_reasons"] == {
        "unclosed_quote": 1,
        "row_too_large": 1,
        "too_many_columns": 1,
        "control_characters": 1,
        "wrong_type": 2,
        "unparseable_line": 2,
    }
    quarantined = pd.read_parquet(tmp_path / "lake" / "quarantined_messages.parquet")
    files = quarantined["source"].str.split("/").str[-1]  # CSV sources are named folder/file
    where = set(zip(files, quarantined["source_line"], strict=True))
    assert where == {
        *(("labelled.csv", line) for line in ("3", "5", "6", "7")),
        *(("batch.jsonl", line) for line in ("2", "3", "4", "5")),
    }

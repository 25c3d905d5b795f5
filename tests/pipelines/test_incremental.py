"""Incremental ingestion by daily partitions, and the lineage: real Dagster in-process, SQLite.

Only the ingestion assets and `training_examples` run (no model is fitted): what is tested is
which days are read and that training's input is the union of every day and the labelled CSV.
"""

from __future__ import annotations

import json
import os
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa

from conversations import store_engine, tables
from pipelines.automation import retraining_schedule
from pipelines.conversation_log import plan_ingestion
from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings

INGESTION = ["conversation_log", "raw_conversations", "conversations", "quarantined_messages"]
LOG = dg.AssetKey("conversation_log")
INTENTS = ("card_arrival", "top_up", "exchange_rate")


def _message(message_id: str, day: str, intent: str, text: str) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "conversation_id": f"c-{message_id}",
        "turn": 0,
        "ts": f"{day}T10:00:00Z",
        "speaker": "customer",
        "text": text,
        "intent": intent,
        "label_source": "agent",
    }


def _store_messages(store_url: str, day: str, count: int) -> None:
    """`count` customer messages of `day` in the chat store (labelled by the message itself)."""
    engine = store_engine.create_engine(store_url)
    moment = datetime.fromisoformat(f"{day}T12:00:00+00:00")
    with engine.begin() as connection:
        connection.execute(
            sa.insert(tables.messages),
            [
                {
                    "message_id": f"s-{day}-{i}",
                    "conversation_id": f"room-{day}",
                    "turn": i,
                    "ts": moment.replace(minute=i),
                    "speaker": "customer",
                    "channel": "chat",
                    "text": f"store message {i} of {day} about {INTENTS[i % 3]}",
                    "intent": INTENTS[i % 3],
                    "label_source": "agent",
                }
                for i in range(count)
            ],
        )
    engine.dispose()


@pytest.fixture()
def settings(tmp_path: Path) -> PipelineSettings:
    csv_dir = tmp_path / "banking77"
    csv_dir.mkdir()
    rows = [f"how do I {intent} number {i},{intent}" for i in range(6) for intent in INTENTS]
    (csv_dir / "train.csv").write_text("text,category\n" + "\n".join(rows) + "\n")
    (tmp_path / "incoming").mkdir()
    return PipelineSettings(
        banking77_dir=csv_dir,
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


def _run(
    settings: PipelineSettings,
    instance: dg.DagsterInstance,
    *extra: str,
    run_config: dict[str, Any] | None = None,
):
    """One training-job run of the ingestion assets over the days the schedule would plan."""
    defs = build_definitions(settings)
    schedule = retraining_schedule("0 3 * * 1")
    with dg.build_schedule_context(
        instance=instance, resources={"sources": defs.resources["sources"]}
    ) as context:
        request = schedule.evaluate_tick(context).run_requests[0]
    job = defs.resolve_job_def("training_job")
    result = job.execute_in_process(
        instance=instance,
        asset_selection=[dg.AssetKey(name) for name in (*INGESTION, *extra)],
        tags=request.tags,
        run_config=run_config,
    )
    assert result.success
    return result


def _days_materialised(result: dg.ExecuteInProcessResult) -> list[str]:
    return sorted(
        event.partition
        for event in result.get_asset_materialization_events()
        if event.asset_key == LOG and event.partition
    )


def _metadata(result: dg.ExecuteInProcessResult, asset: str) -> dict[str, Any]:
    (event,) = [e for e in result.get_asset_materialization_events() if e.asset_key.path == [asset]]
    return {k: v.value for k, v in event.materialization.metadata.items()}


def _observed(result: dg.ExecuteInProcessResult) -> dict[str, dict[str, Any]]:
    """Each day's counts, from the observations the run recorded on the log's partitions."""
    return {
        event.event_specific_data.asset_observation.partition: {
            key: value.value
            for key, value in event.event_specific_data.asset_observation.metadata.items()
        }
        for event in result.all_events
        if event.event_type_value == "ASSET_OBSERVATION"
    }


def test_a_second_run_reads_only_the_new_day_and_training_reads_the_union(settings, instance):
    incoming = settings.conversation_jsonl_dir
    lines = [
        _message(f"j-{i}", "2026-11-20", INTENTS[i % 3], f"jsonl text {i} on the first day")
        for i in range(6)
    ]
    (incoming / "first.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    _store_messages(str(settings.conversation_store_url), "2026-11-21", 6)

    first = _run(settings, instance, "training_examples")
    assert _days_materialised(first) == ["2026-11-20", "2026-11-21"]
    assert _metadata(first, "conversations")["rows_kept"] == 18 + 6 + 6

    _store_messages(str(settings.conversation_store_url), "2026-11-23", 9)
    second = _run(settings, instance, "training_examples")
    assert _days_materialised(second) == ["2026-11-23"]
    assert _observed(second) == {
        "2026-11-23": {
            "rows_in": 9,
            "rows_kept": 9,
            "rows_quarantined": 0,
            "quarantine_reasons": {},
            "fingerprint": _observed(second)["2026-11-23"]["fingerprint"],
        }
    }
    assert _metadata(second, "conversation_log")["days_read"] == 1
    conversations = _metadata(second, "conversations")
    assert conversations["rows_in"] == conversations["rows_kept"] == 18 + 6 + 6 + 9
    assert conversations["log_days"] == 3
    assert instance.get_materialized_partitions(LOG) == {"2026-11-20", "2026-11-21", "2026-11-23"}
    examples = pd.read_parquet(settings.lake_dir / "training_examples.parquet")
    assert len(examples) == 18 + 6 + 6 + 9
    assert {"s-2026-11-21-0", "s-2026-11-23-8", "j-5"} <= set(examples["message_id"])

    # Nothing changed: the run names today's day alone and reads no day at all.
    third = _run(settings, instance)
    assert _metadata(third, "conversation_log")["days_read"] == 0
    assert _metadata(third, "conversations")["rows_kept"] == 18 + 6 + 6 + 9


def test_a_jsonl_file_over_three_days_lands_in_three_partitions_that_reconcile(settings, instance):
    days = ["2026-11-01", "2026-11-02", "2026-11-03"]
    good = [_message(f"m-{d}-{i}", d, "top_up", f"text {i} of {d}") for d in days for i in range(3)]
    bad = [
        json.dumps(_message("m-2026-11-01-0", "2026-11-01", "top_up", "same id, same day")),
        json.dumps(_message("x-1", "2026-11-02", "top_up", "   ")),  # empty text
        json.dumps(_message("x-2", "2026-11-03", "top_up", "nul\x00byte")),  # control character
        "{not json",  # no timestamp: the file's modification day (set to the third day below)
    ]
    path = settings.conversation_jsonl_dir / "three_days.jsonl"
    path.write_text("\n".join([*map(json.dumps, good), *bad]) + "\n")
    modified = datetime(2026, 11, 3, 18, tzinfo=UTC).timestamp()
    os.utime(path, (modified, modified))

    two_days_a_pass = {"ops": {"conversation_log": {"config": {"days_per_batch": 2}}}}
    result = _run(settings, instance, run_config=two_days_a_pass)
    assert _days_materialised(result) == days
    observed = _observed(result)
    assert {day: counts["rows_in"] for day, counts in observed.items()} == {
        "2026-11-01": 4,
        "2026-11-02": 4,
        "2026-11-03": 5,
    }
    assert {day: counts["quarantine_reasons"] for day, counts in observed.items()} == {
        "2026-11-01": {"duplicate_message_id": 1},
        "2026-11-02": {"empty_text": 1},
        "2026-11-03": {"control_characters": 1, "unparseable_line": 1},
    }
    for counts in observed.values():
        assert counts["rows_in"] == counts["rows_kept"] + counts["rows_quarantined"]
        assert counts["rows_kept"] == 3
    conversations = _metadata(result, "conversations")
    assert conversations["rows_in"] == 18 + 13
    assert conversations["rows_quarantined"] == 4
    quarantined = pd.read_parquet(settings.lake_dir / "quarantined_messages.parquet")
    assert sorted(quarantined.loc[quarantined["source"] == path.name, "source_line"]) == [
        "10",
        "11",
        "12",
        "13",
    ]


def test_drift_report_is_downstream_of_the_model_and_the_conversations():
    defs = build_definitions(PipelineSettings())
    graph = defs.resolve_asset_graph()
    parents = graph.get(dg.AssetKey("drift_report")).parent_keys
    assert {dg.AssetKey("intent_model"), dg.AssetKey("model_promotion"), LOG} <= parents
    assert dg.AssetKey("conversation_log") in graph.get(dg.AssetKey("conversations")).parent_keys


def test_the_training_job_leaves_message_features_out():
    defs = build_definitions(PipelineSettings())
    job = defs.resolve_job_def("training_job")
    keys = {key.to_user_string() for key in job.asset_layer.selected_asset_keys}
    assert "message_features" not in keys
    assert {"conversation_log", "conversations", "training_examples", "intent_model"} <= keys


def test_changed_days_far_apart_are_read_without_a_range_each_day_observed(settings, instance):
    incoming = settings.conversation_jsonl_dir
    for day in ("2026-01-05", "2026-11-20"):
        lines = [_message(f"{day}-{i}", day, "top_up", f"text {i} of {day}") for i in range(2)]
        (incoming / f"{day}.jsonl").write_text("\n".join(map(json.dumps, lines)) + "\n")
    sources = build_definitions(settings).resources["sources"]
    plan = plan_ingestion(sources.log_sources())
    assert plan.stale == ("2026-01-05", "2026-11-20") and plan.tags() == {}

    result = _run(settings, instance)
    assert _days_materialised(result) == []  # not 320 days recorded for two that changed
    assert {day: c["rows_in"] for day, c in _observed(result).items()} == {
        "2026-01-05": 2,
        "2026-11-20": 2,
    }
    assert _metadata(result, "conversations")["rows_kept"] == 18 + 4
    assert plan_ingestion(sources.log_sources()).stale == ()


def test_days_of_a_postgres_store_are_read_by_time_range(settings, instance, postgres_url):
    settings = settings.model_copy(update={"conversation_store_url": postgres_url})
    _store_messages(postgres_url, "2026-09-01", 4)
    _store_messages(postgres_url, "2026-09-02", 5)
    first = _run(settings, instance)
    assert _days_materialised(first) == ["2026-09-01", "2026-09-02"]
    assert {day: c["rows_in"] for day, c in _observed(first).items()} == {
        "2026-09-01": 4,
        "2026-09-02": 5,
    }
    engine = store_engine.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(tables.labels),
            [
                {  # a label on a message of the second day
                    "message_id": "s-2026-09-02-0",
                    "text": "store message 0",
                    "intent": "top_up",
                    "label_source": "agent",
                    "trust": "agent",
                    "ts": datetime(2026, 11, 29, tzinfo=UTC),
                },
                {  # feedback naming no stored message: a row of the day it was given
                    "message_id": None,
                    "text": "free-text feedback",
                    "intent": "exchange_rate",
                    "label_source": "feedback",
                    "trust": "service",
                    "ts": datetime(2026, 9, 3, 8, tzinfo=UTC),
                },
            ],
        )
    engine.dispose()
    second = _run(settings, instance)
    assert _days_materialised(second) == ["2026-09-02", "2026-09-03"]
    assert {day: c["rows_in"] for day, c in _observed(second).items()} == {
        "2026-09-02": 5,
        "2026-09-03": 1,
    }
    kept = pd.read_parquet(settings.lake_dir / "conversations.parquet").set_index("message_id")
    assert kept.loc["s-2026-09-02-0", "intent"] == "top_up"
    assert len(kept) == 18 + 4 + 5 + 1

"""The held-challenger sensor, on a real Dagster instance, MLflow SQLite registry and SQLite store.

A good challenger is held by a real `model_promotion` on 0 shadow pairs (GATE_SHADOW_MIN_SAMPLES
30); the sensor skips naming the counts, requests one re-judgement once 35 pairs are in the
store (written by the store's own writer, as serving's prediction log writes them), requests
nothing more on the next tick, and the requested run promotes the challenger.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from conversations import store_engine
from conversations.schema import PredictionRole
from conversations.writer import PredictionRecord, insert_predictions
from models.registry import CHALLENGER, CHAMPION
from models.splits import assign_splits
from monitoring.settings import MonitoringSettings
from pipelines.definitions import build_definitions
from pipelines.resources import ConversationSources, MlflowRegistry
from pipelines.settings import PipelineSettings
from pipelines.shadow_sensor import VERSION_TAG, held_challenger_sensor
from tests.serving.test_shadow_hold import (
    HELD_FOR_SHADOW_ENV,
    MIN_SAMPLES,
    Candidates,
    candidates,
    judge,
)

__all__ = ["candidates"]  # the module-scoped fixture, reused
pytestmark = pytest.mark.slow
# The offline rules a six-intent slice cannot meet are relaxed, as in the hold test.
RELAXED = {"min_invariance": 0.0, "min_functionality": 0.0, "max_intent_f1_drop": 1.0}


class Sensor:
    """Evaluates the sensor tick after tick on one Dagster instance, carrying its cursor."""

    def __init__(self, instance: dg.DagsterInstance, held: Candidates) -> None:
        self.instance = instance
        self.cursor: str | None = None
        self.resources = {
            "mlflow_registry": MlflowRegistry(
                tracking_uri=held.config.tracking_uri, model_name=held.registry.name
            ),
            "sources": ConversationSources(store_url=held.store_url),
        }

    def tick(self) -> dg.SensorExecutionData:
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=self.resources
        ) as context:
            result = held_challenger_sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result


def examples(small_slice: pd.DataFrame) -> pd.DataFrame:
    """`training_examples` as judge() builds them."""
    frame = small_slice.rename(columns={"category": "intent"}).assign(context="{}")
    frame["split"] = assign_splits(frame["text"].tolist(), frame["intent"].tolist())
    frame["message_id"] = [f"m-{n}" for n in range(len(frame))]
    return frame


def write_pairs(held: Candidates, texts: list[str]) -> None:
    """Served (champion) and shadow (challenger) answers sharing a pair id, one per text."""
    now = datetime.now(UTC)
    records = []
    for n, text in enumerate(texts):
        for role, version in (
            (PredictionRole.SERVED, held.champion),
            (PredictionRole.SHADOW, held.challenger),
        ):
            records.append(
                PredictionRecord(
                    message_id=f"{role.value}-{n}",
                    intent="card_arrival",
                    confidence=0.9,
                    fallback=False,
                    model_name=held.registry.name,
                    model_version=version,
                    ts=now,
                    text=text,
                    role=role,
                    pair_id=f"pair-{n}",
                )
            )
    engine = store_engine.create_engine(held.store_url)
    with engine.begin() as connection:
        insert_predictions(connection, records)
    engine.dispose()


def test_the_sensor_rejudges_a_held_challenger_once_its_shadow_sample_is_large_enough(
    candidates: Candidates,
    small_slice: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    for key, value in HELD_FOR_SHADOW_ENV.items():
        monkeypatch.setenv(key, value)
    held = candidates
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        sensor = Sensor(instance, held)
        nothing = sensor.tick()
        assert not nothing.run_requests
        assert nothing.skip_message == "no challenger held for a larger shadow sample"

        assert judge(held, small_slice)["held"] is True
        # What the training run that held it leaves: its inputs in the lake (and below,
        # intent_model's materialisation naming the version).
        lake = tmp_path / "lake"
        lake.mkdir()
        (lake / "intent_model.json").write_text(json.dumps({"version": held.challenger}))
        examples(small_slice).to_parquet(lake / "training_examples.parquet", index=False)

        empty = sensor.tick()
        assert not empty.run_requests
        assert f"version {held.challenger} has 0 shadow pairs" in (empty.skip_message or "")
        assert f"({MIN_SAMPLES} needed" in (empty.skip_message or "")

        write_pairs(held, small_slice["text"].head(MIN_SAMPLES + 5).tolist())
        # Until intent_model is the held version, model_promotion would judge another one.
        elsewhere = sensor.tick()
        assert not elsewhere.run_requests
        assert "the latest intent_model is version None" in (elsewhere.skip_message or "")
        instance.report_runless_asset_event(
            dg.AssetMaterialization("intent_model", metadata={"version": held.challenger})
        )
        fired = sensor.tick()
        [request] = fired.run_requests or []
        assert request.run_key == f"shadow-rejudge-{held.challenger}-min{MIN_SAMPLES}"
        assert request.tags[VERSION_TAG] == held.challenger

        again = sensor.tick()
        assert not again.run_requests, again.run_requests
        assert "already requested" in (again.skip_message or "")
        assert f"has {MIN_SAMPLES + 5} shadow pairs" in (again.skip_message or "")

        settings = PipelineSettings(
            banking77_dir=None,
            conversation_jsonl_dir=tmp_path / "incoming",
            conversation_store_url=held.store_url,
            lake_dir=lake,
            mlflow_tracking_uri=held.config.tracking_uri,
            registered_model_name=held.registry.name,
        )
        defs = build_definitions(settings, MonitoringSettings(reports_dir=tmp_path / "reports"))
        job = defs.resolve_job_def(request.job_name or "shadow_rejudge_job")
        result = job.execute_in_process(
            instance=instance,
            run_config={"ops": {"model_promotion": {"config": RELAXED}}},
            tags=request.tags,
        )
        assert result.success
        [event] = result.get_asset_materialization_events()
        assert event.asset_key == dg.AssetKey("model_promotion")
        champion = held.registry.version_by_alias(CHAMPION)
        assert champion is not None and str(champion.version) == held.challenger
        assert held.registry.version_by_alias(CHALLENGER) is None
        done = sensor.tick()
        assert not done.run_requests
        assert done.skip_message == "no challenger held for a larger shadow sample"

"""The drift demo's shadow step on real parts: a held challenger, a real `bentoml serve` that
shadows it on live HTTP traffic, `held_challenger_sensor` on a Dagster instance, and the
`shadow_rejudge_job` run it requests, which promotes the challenger on the pairs serving wrote.
(The whole demo on Banking77 takes minutes; this is its new step on the six-intent slice.)
"""

from __future__ import annotations

import json
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest

from models.registry import CHALLENGER, CHAMPION
from monitoring.settings import MonitoringSettings
from pipelines.demo_shadow import prove_on_live_traffic
from pipelines.settings import PipelineSettings
from tests.pipelines.test_shadow_sensor import RELAXED, examples
from tests.serving.test_shadow_hold import (
    HELD_FOR_SHADOW_ENV,
    MIN_SAMPLES,
    Candidates,
    candidates,
    judge,
)

__all__ = ["candidates"]  # the module-scoped fixture, reused
pytestmark = pytest.mark.slow


def test_the_held_challenger_is_shadowed_on_live_traffic_then_promoted(
    candidates: Candidates,
    small_slice: pd.DataFrame,
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    # As in the sensor's test: the good challenger disagrees with the weak champion by design.
    # Serving finds the sandbox as the demo's does, through the shared variable names.
    sandbox = {
        "MLFLOW_TRACKING_URI": candidates.config.tracking_uri,
        "CONVERSATION_STORE_URL": candidates.store_url,
        "DAGSTER_HOME": str(tmp_path / "home"),
    }
    for key, value in (HELD_FOR_SHADOW_ENV | sandbox).items():
        monkeypatch.setenv(key, value)
    for key in ("SERVING_MLFLOW_TRACKING_URI", "SERVING_STORE_URL"):
        monkeypatch.delenv(key, raising=False)
    (tmp_path / "home").mkdir()
    assert judge(candidates, small_slice)["held"] is True
    # What the training run that held it leaves: its inputs in the lake, its materialisation.
    lake = tmp_path / "lake"
    lake.mkdir()
    (lake / "intent_model.json").write_text(json.dumps({"version": candidates.challenger}))
    examples(small_slice).to_parquet(lake / "training_examples.parquet", index=False)
    with dg.DagsterInstance.get() as instance:
        instance.report_runless_asset_event(
            dg.AssetMaterialization("intent_model", metadata={"version": candidates.challenger})
        )
    settings = PipelineSettings(
        banking77_dir=None,
        conversation_jsonl_dir=tmp_path / "incoming",
        conversation_store_url=candidates.store_url,
        lake_dir=lake,
        mlflow_tracking_uri=candidates.config.tracking_uri,
        registered_model_name=candidates.registry.name,
    )
    texts = small_slice["text"].sample(MIN_SAMPLES + 5, random_state=3).tolist()

    step = prove_on_live_traffic(
        settings, MonitoringSettings(reports_dir=tmp_path / "reports"), tmp_path, texts, RELAXED
    )

    assert f"version {candidates.challenger} has 0 shadow pairs" in step.before
    assert step.sent == MIN_SAMPLES + 5
    assert "shadow pairs" in step.trigger and f"({MIN_SAMPLES} needed" in step.trigger
    assert step.promotion["passed"] is True and step.promotion["held"] is False
    assert str(candidates.registry.version_by_alias(CHAMPION).version) == candidates.challenger
    assert candidates.registry.version_by_alias(CHALLENGER) is None
    newest = candidates.registry.gate_entries(candidates.challenger)[-1]
    sample = {check.name: check for check in newest.checks}["shadow_sample"]
    assert sample.passed and "live messages" in sample.reason

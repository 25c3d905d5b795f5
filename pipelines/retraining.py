"""The retrain rule's Dagster and MLflow side (the rule itself: models/retraining.py).

Each training run records what it was trained on: the training configuration's digest as a run
tag, and the example index as the run artifact `example_index/example_index.parquet`. The next
run compares its examples with the newest complete version's record. A run retrains regardless
when its config says `force_retrain`, or it carries the tag `supportloop/retrain` (the drift
sensor sets it, with its reason).
"""

from __future__ import annotations

import logging
import tempfile
from collections.abc import Mapping
from pathlib import Path

import dagster as dg
import pandas as pd

from models.mlflow_client import mlflow_error
from models.registry import IntentRegistry, is_complete
from models.retraining import ExampleIndex, RetrainDecision, TrainedVersion

logger = logging.getLogger(__name__)
RETRAIN_TAG = "supportloop/retrain"  # a run tag: retrain whatever changed, its value the reason
TAG_TRAINING_CONFIG = "supportloop/training_config"  # run tag: the configuration's digest
INDEX_DIR = "example_index"
INDEX_FILE = "example_index.parquet"


def forced_reasons(force_retrain: bool, run_tags: Mapping[str, str]) -> list[str]:
    """Why this run must retrain whatever the change: its config flag, its retrain tag."""
    reasons = ["run config force_retrain"] if force_retrain else []
    if tag := run_tags.get(RETRAIN_TAG):
        reasons.append(f"run tag {RETRAIN_TAG}={tag}")
    return reasons


def last_trained(registry: IntentRegistry) -> TrainedVersion | None:
    """The newest complete version and what its run recorded about its training data."""
    latest = next((v for v in registry.versions() if is_complete(v)), None)
    if latest is None:
        return None
    version = str(latest.version)
    if latest.run_id is None:
        return TrainedVersion(version, None, None)
    run = registry.client.get_run(latest.run_id)
    return TrainedVersion(
        version, _read_index(registry, latest.run_id), run.data.tags.get(TAG_TRAINING_CONFIG)
    )


def _read_index(registry: IntentRegistry, run_id: str) -> ExampleIndex | None:
    """The run's example index, or None when it logged none (older runs, an interrupted log)."""
    with tempfile.TemporaryDirectory() as scratch:
        try:
            path = registry.client.download_artifacts(run_id, f"{INDEX_DIR}/{INDEX_FILE}", scratch)
        except (mlflow_error(), OSError) as error:
            logger.info("run %s has no example index: %s", run_id, error)
            return None
        return ExampleIndex.from_frame(pd.read_parquet(path))


def log_index(registry: IntentRegistry, run_id: str, index: ExampleIndex) -> None:
    """Store the examples' index with the version's (finished) run.

    Logged after registration: a process killed before it leaves a version without an index,
    which the next run answers by retraining (never by skipping on a guess).
    """
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, INDEX_FILE)
        index.to_frame().to_parquet(path, index=False)
        registry.client.log_artifact(run_id, str(path), INDEX_DIR)


def kept_version_result(
    registry: IntentRegistry, decision: RetrainDecision
) -> dg.MaterializeResult:
    """`intent_model` when the rule keeps the last version: no fit, no run, no new version.

    Like a fingerprint reuse, the asset is materialised with the version it stands for (the
    one the change was counted against; already judged, so `model_promotion` decides nothing)
    and says why nothing was trained.
    """
    assert decision.base_version is not None  # the rule only keeps an existing version
    described = registry.describe(registry.version(decision.base_version))
    return dg.MaterializeResult(
        value=described.to_dict() | {"reused": True, "retrain_reason": decision.reason},
        metadata={
            "version": decision.base_version,
            "reused": True,
            **decision.metadata(),
            "test_accuracy": described.metrics.get("test_accuracy"),
            "macro_f1": described.metrics.get("macro_f1"),
        },
    )

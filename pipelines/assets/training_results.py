"""What `intent_model` materialises: a reused version's or a new version's value and metadata.

The asset itself (pipelines/assets/training.py) decides and trains; these turn the outcome into
the Dagster value and UI metadata (candidate table, confusion matrix, MLflow run link).
"""

from __future__ import annotations

import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from pipelines.metadata import png_markdown

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from models.recovery import Recovery
    from models.registry import IntentRegistry
    from models.retraining import RetrainDecision
    from models.training import TrainingOutcome
    from pipelines.resources import MlflowRegistry


def recovered_result(registry: IntentRegistry, recovered: Recovery) -> dg.MaterializeResult:
    """`intent_model` when recovery found a version for the same data and configuration."""
    assert recovered.version is not None  # only a recovery that found a version is reused
    described = registry.describe(recovered.version)
    return dg.MaterializeResult(
        value=described.to_dict() | {"reused": True},
        metadata={
            "version": str(recovered.version.version),
            "reused": True,
            "recovery": recovered.outcome.value,
            "test_accuracy": described.metrics.get("test_accuracy"),
            "macro_f1": described.metrics.get("macro_f1"),
        },
    )


def run_link(
    mlflow_registry: MlflowRegistry, registry: IntentRegistry, run_id: str | None
) -> dict[str, dg.MetadataValue]:
    """`mlflow_run`: the MLflow UI link of a version's run (none for a version without one)."""
    if run_id is None:
        return {}
    run = registry.client.get_run(run_id)
    return {
        "mlflow_run": dg.MetadataValue.url(mlflow_registry.run_url(run.info.experiment_id, run_id))
    }


def candidates_table(outcome: TrainingOutcome) -> dg.MetadataValue:
    """Each fitted candidate's validation scores, fit time and search trials, as markdown."""
    rows = [
        {
            "candidate": r.name,
            **{k: round(v, 4) for k, v in r.validation.items()},
            "fit_s": round(r.fit_seconds, 1),
            "trials": len(r.search.trials) if r.search else 1,
        }
        for r in outcome.candidates
    ]
    return dg.MetadataValue.md(pd.DataFrame(rows).to_markdown(index=False))


def confusion_matrix(outcome: TrainingOutcome) -> dg.MetadataValue:
    """The test split's confusion matrix, embedded as an image the Dagster UI shows inline."""
    with tempfile.TemporaryDirectory() as scratch:
        from models.evaluation import plot_confusion_matrix  # matplotlib, scikit-learn

        image = plot_confusion_matrix(
            outcome.test_predictions, outcome.labels, Path(scratch) / "cm.png"
        )
        return png_markdown(image)


def trained_result(
    registry: IntentRegistry,
    version: ModelVersion,
    outcome: TrainingOutcome,
    decision: RetrainDecision,
    link: dict[str, dg.MetadataValue],
) -> dg.MaterializeResult:
    """`intent_model` when it trained and registered `version`: its scores, why it retrained."""
    confusion = confusion_matrix(outcome)
    candidates = candidates_table(outcome)
    described = registry.describe(version)
    return dg.MaterializeResult(
        value=described.to_dict() | {"reused": False},
        metadata={
            "version": str(version.version),
            "reused": False,
            **decision.metadata(),
            "candidate": outcome.candidate.name,
            "test_accuracy": outcome.test["accuracy"],
            "macro_f1": outcome.test["macro_f1"],
            "fallback_threshold": outcome.fallback.threshold,
            "fallback_margin": outcome.fallback.margin,
            "test_ece": outcome.calibration.metrics()["test_ece"],
            "temperature": outcome.calibration.temperature,
            "fitted_on": f"{outcome.fitted_on} ({outcome.fitted_examples} examples)",
            "excluded_intents": ", ".join(outcome.excluded_intents) or "none",
            "selection_examples": outcome.selection_examples,
            "skipped_candidates": "; ".join(s.reason for s in outcome.skipped) or "none",
            **link,
            "candidates": candidates,
            "confusion_matrix": confusion,
        },
    )

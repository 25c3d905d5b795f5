"""Log a training outcome to MLflow (params, metrics, reports, plots, model) and register it."""

from __future__ import annotations

import json
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import asdict
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
from mlflow.entities.model_registry import ModelVersion
from mlflow.models import ModelSignature
from mlflow.types import ColSpec, Schema

from models.evaluation import per_intent_metrics, plot_confidence_histogram, plot_confusion_matrix
from models.registry import (
    TAG_FALLBACK,
    TAG_FINGERPRINT,
    TAG_TRAINED_AT,
    TRUSTED_SKOPS_TYPES,
    IntentRegistry,
)
from models.training import TrainingOutcome

# Pinned here so MLflow does not spend ~10 s inferring requirements by importing the model.
_MODEL_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas", "scipy", "textblob", "spacy")
_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
SIGNATURE = ModelSignature(
    inputs=Schema([ColSpec("string", "text"), ColSpec("string", "context", required=False)]),
    outputs=Schema([ColSpec("string")]),
)


REFERENCE_DIR = "reference"
REFERENCE_FILE = "reference.parquet"


@contextmanager
def mlflow_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at these stores for the block, then restore the old ones.

    `mlflow.set_tracking_uri`/`set_registry_uri` also write MLFLOW_TRACKING_URI/REGISTRY_URI
    into os.environ; left there, they would leak into every settings object read afterwards.
    """
    saved_env = {name: os.environ.get(name) for name in _URI_ENV}
    saved = (mlflow.get_tracking_uri(), mlflow.get_registry_uri())
    mlflow.set_tracking_uri(tracking_uri)
    mlflow.set_registry_uri(registry_uri)
    try:
        yield
    finally:
        mlflow.set_tracking_uri(saved[0])
        mlflow.set_registry_uri(saved[1])
        for name, value in saved_env.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


def ensure_experiment(name: str, artifact_root: str | None) -> str:
    """The experiment id for `name`, creating it with a local artifact root if needed."""
    experiment = mlflow.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    location = None
    if artifact_root:
        location = (
            artifact_root if "://" in artifact_root else Path(artifact_root).resolve().as_uri()
        )
    return mlflow.create_experiment(name, artifact_location=location)


def _outcome_metrics(outcome: TrainingOutcome) -> dict[str, float]:
    metrics = {
        f"test_{key}" if key == "accuracy" else key: value for key, value in outcome.test.items()
    }
    metrics |= {f"validation_{key}": value for key, value in outcome.validation.items()}
    metrics |= per_intent_metrics(outcome.report)
    for result in outcome.candidates:
        metrics[f"candidate.{result.name}.validation_macro_f1"] = result.validation["macro_f1"]
        metrics[f"candidate.{result.name}.fit_seconds"] = result.fit_seconds
    return metrics


def log_and_register(
    outcome: TrainingOutcome,
    registry: IntentRegistry,
    experiment_name: str,
    artifact_root: str | None,
    fingerprint: str,
    params: dict[str, Any],
    run_tags: dict[str, str],
    reference: pd.DataFrame | None = None,
) -> ModelVersion:
    """Log the outcome as one MLflow run and register its model; returns the new version.

    `reference` (text, intent, split of the training data) is stored with the run as the
    snapshot that drift monitoring compares live traffic against.
    """
    config = registry.config
    trained_at = datetime.now(UTC).isoformat()
    with mlflow_uris(config.tracking_uri, config.registry_uri or config.tracking_uri):
        version = _log_run(
            outcome, registry, experiment_name, artifact_root, params, run_tags, reference
        )
    for key, value in {
        TAG_FINGERPRINT: fingerprint,
        TAG_TRAINED_AT: trained_at,
        TAG_FALLBACK: json.dumps(outcome.fallback.to_dict()),
        "candidate": outcome.candidate.name,
        **{key: value for key, value in run_tags.items() if key.startswith("dagster")},
    }.items():
        registry.client.set_model_version_tag(registry.name, version, key, value)
    registry.client.update_model_version(
        registry.name,
        version,
        description=(
            f"{outcome.candidate.description}. test_accuracy {outcome.test['accuracy']:.4f}, "
            f"macro_f1 {outcome.test['macro_f1']:.4f} on {outcome.sizes['test']} frozen test "
            "messages."
        ),
    )
    return registry.version(version)


def _log_run(
    outcome: TrainingOutcome,
    registry: IntentRegistry,
    experiment_name: str,
    artifact_root: str | None,
    params: dict[str, Any],
    run_tags: dict[str, str],
    reference: pd.DataFrame | None,
) -> str:
    experiment_id = ensure_experiment(experiment_name, artifact_root)
    registry.ensure_registered_model()
    run_name = f"{outcome.candidate.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=run_tags):
        mlflow.log_params(
            {"candidate": outcome.candidate.name, **outcome.candidate.params, **params}
            | {f"rows_{split}": size for split, size in outcome.sizes.items()}
            | {"n_intents": len(outcome.labels)}
        )
        mlflow.log_metrics(_outcome_metrics(outcome))
        mlflow.log_dict(outcome.report, "intent_report.json")
        mlflow.log_dict(outcome.errors, "intent_errors.json")
        mlflow.log_dict([asdict(result) for result in outcome.candidates], "candidates.json")
        mlflow.log_dict(outcome.fallback.to_dict(), "fallback_policy.json")
        with tempfile.TemporaryDirectory() as scratch:
            folder = Path(scratch)
            plot_confusion_matrix(
                outcome.test_predictions, outcome.labels, folder / "confusion_matrix.png"
            )
            plot_confidence_histogram(
                outcome.test_predictions,
                outcome.fallback.threshold,
                folder / "confidence_histogram.png",
            )
            if reference is not None:
                reference_file = folder / REFERENCE_FILE
                reference[["text", "intent", "split"]].reset_index(drop=True).to_parquet(
                    reference_file
                )
                mlflow.log_artifact(str(reference_file), REFERENCE_DIR)
                reference_file.unlink()
            mlflow.log_artifacts(scratch)
        example = pd.DataFrame(
            {
                "text": outcome.test_predictions.texts[:3],
                "context": ["{}"] * min(3, len(outcome.test_predictions.texts)),
            }
        )
        info = mlflow.sklearn.log_model(
            outcome.pipeline,
            name="model",
            serialization_format="skops",
            skops_trusted_types=TRUSTED_SKOPS_TYPES,
            signature=SIGNATURE,
            input_example=example,
            pip_requirements=[f"{name}=={installed_version(name)}" for name in _MODEL_REQUIREMENTS],
            code_paths=[str(Path(__file__).resolve().parents[1] / "features")],
            metadata={"fallback": outcome.fallback.to_dict(), "labels": outcome.labels},
            registered_model_name=registry.name,
        )
        return str(info.registered_model_version)

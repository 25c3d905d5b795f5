"""What a training run holds besides its model: datasets, one child run per candidate, reports.

Called by `models/tracking.py` inside the open parent run (the MLflow fluent API's active run):

- the training data as MLflow Datasets (one per split: contexts `training`, `validation`,
  `test`), each with a digest of its rows, so runs trained on the same data share a dataset in
  the UI. Only schema, profile and digest are stored; the rows themselves are the run's
  `reference/reference.parquet` snapshot, which is the datasets' source.
- every fitted candidate as a nested child run named after it, with its parameters (the best
  trial's), validation scores and fit time; the chosen one is tagged `supportloop/chosen=true`.
  Under it, one run per hyper-parameter search trial (`<candidate>-trial-<n>`, tag
  `supportloop/trial`), its best trial tagged chosen too (models/search.py).
- the chosen model's reports in the spirit of `rasa test nlu`, and its per-intent scores as one
  table (`intent_metrics.json`) rather than hundreds of flat metrics.
- its calibration: ECE metrics before and after temperature scaling (`validation_ece`,
  `test_ece`, `..._uncalibrated`), the reliability bins as one table (`reliability.json`) and
  as a diagram (`reliability_diagram.png`).
- its out-of-scope evaluation (models/out_of_scope.py): `oos_recall` (mean and min over the
  draws), `oos_in_scope_answered_accuracy`, the intents each draw held out and how the fallback
  policy was chosen (`out_of_scope/draws.json`), the recall curve (`out_of_scope/curve.json`);
  the fallback objective (param `fallback_policy`, TRAIN_FALLBACK_POLICY), why this policy
  (`fallback_policy_reason`) and its figures on validation (`fallback_threshold`,
  `fallback_validation_coverage`, `fallback_validation_answered_accuracy`).
"""

from __future__ import annotations

import hashlib
import json
import tempfile
import warnings
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import mlflow
import pandas as pd
from mlflow.data.pandas_dataset import from_pandas

from models.calibration import CalibrationReport
from models.candidates import SEARCH_SPACE
from models.evaluation import (
    per_intent_table,
    plot_confidence_histogram,
    plot_confusion_matrix,
    plot_reliability_diagram,
)
from models.search import OBJECTIVE, SearchRecord
from models.tracking_store import http_artifact_url
from models.training import TrainingOutcome

if TYPE_CHECKING:
    from mlflow.data.pandas_dataset import PandasDataset

REFERENCE_DIR = "reference"
REFERENCE_FILE = "reference.parquet"
REFERENCE_COLUMNS = ["text", "intent", "split"]
TAG_CHOSEN = "supportloop/chosen"
TAG_TRIAL = "supportloop/trial"  # a search trial's number (models/search.py)
DATASET_NAME = "training_examples"
# The `split` column's values and the MLflow input context each one is logged under.
SPLIT_CONTEXTS = {"train": "training", "validation": "validation", "test": "test"}
_NOTE = "mlflow.note.content"  # MLflow's run description


@dataclass(frozen=True)
class SplitDatasets:
    """The MLflow Datasets of one training run, by split (absent splits are None)."""

    train: PandasDataset | None = None
    validation: PandasDataset | None = None
    test: PandasDataset | None = None

    def logged(self) -> list[tuple[PandasDataset, str]]:
        """(dataset, context) for every split present, in split order."""
        present = ((self.train, "train"), (self.validation, "validation"), (self.test, "test"))
        return [(dataset, SPLIT_CONTEXTS[split]) for dataset, split in present if dataset]


def rows_digest(frame: pd.DataFrame) -> str:
    """A digest of the (text, intent) rows, independent of their order.

    MLflow's own digest hashes only the first 10,000 rows; this one reads every row, so two
    datasets share a digest exactly when they hold the same labelled messages.
    """
    digest = hashlib.sha256()
    for text, intent in sorted(zip(frame["text"], frame["intent"], strict=True)):
        digest.update(f"{text}\t{intent}\n".encode())
    return digest.hexdigest()[:16]


def log_reference(reference: pd.DataFrame | None) -> SplitDatasets:
    """Store the training snapshot and log one MLflow Dataset per split it holds."""
    if reference is None:
        return SplitDatasets()
    snapshot = reference[REFERENCE_COLUMNS].reset_index(drop=True)
    with tempfile.TemporaryDirectory() as scratch:
        path = Path(scratch, REFERENCE_FILE)
        snapshot.to_parquet(path)
        mlflow.log_artifact(str(path), REFERENCE_DIR)
    artifact = mlflow.get_artifact_uri(f"{REFERENCE_DIR}/{REFERENCE_FILE}")
    source = http_artifact_url(artifact, mlflow.get_tracking_uri())
    datasets = SplitDatasets(
        **{
            split: _dataset(snapshot[snapshot["split"] == split], split, source)
            for split in SPLIT_CONTEXTS
            if (snapshot["split"] == split).any()
        }
    )
    _log_inputs(datasets.logged())
    return datasets


def _log_inputs(logged: list[tuple[PandasDataset, str]]) -> None:
    mlflow.log_inputs(
        [dataset for dataset, _ in logged],
        [context for _, context in logged],
        [None] * len(logged),
    )


def _dataset(rows: pd.DataFrame, split: str, source: str) -> PandasDataset:
    with warnings.catch_warnings():
        # A local file URI matches MLflow's two local sources (schemes "" and "file"), which
        # are the same class; MLflow warns about the tie on every call.
        warnings.filterwarnings("ignore", message="The specified dataset source can be")
        return from_pandas(
            rows[["text", "intent"]].reset_index(drop=True),
            source=source,
            targets="intent",
            name=f"{DATASET_NAME}.{split}",
            digest=rows_digest(rows),
        )


def log_candidate_runs(
    outcome: TrainingOutcome, experiment_id: str, datasets: SplitDatasets, tags: dict[str, str]
) -> None:
    """One nested child run per fitted candidate under the active run (`tags` on each)."""
    inputs = [(d, c) for d, c in datasets.logged() if c in ("training", "validation")]
    for result in outcome.candidates:
        # Candidates are resolved from the declared search space, which holds their params.
        declared = SEARCH_SPACE.get(result.name)
        child_tags = tags | {TAG_CHOSEN: str(result.name == outcome.candidate.name).lower()}
        if declared is not None:
            child_tags[_NOTE] = declared.description
        with mlflow.start_run(
            experiment_id=experiment_id, run_name=result.name, nested=True, tags=child_tags
        ):
            params = declared.params if declared is not None else {}
            if result.search is not None:  # the best trial's values of the searched knobs
                params = result.search.params
            mlflow.log_params({"candidate": result.name, **params})
            if inputs:
                _log_inputs(inputs)
            scores = {f"validation_{key}": value for key, value in result.validation.items()}
            mlflow.log_metrics(scores, dataset=datasets.validation)
            mlflow.log_metric("fit_seconds", result.fit_seconds)
            if result.search is not None and len(result.search.trials) > 1:
                _log_trials(experiment_id, result.name, result.search, datasets, tags)


def _log_trials(
    experiment_id: str,
    name: str,
    search: SearchRecord,
    datasets: SplitDatasets,
    tags: dict[str, str],
) -> None:
    """One run per search trial, nested under its candidate's run: params, scores, fit time."""
    best = max(search.trials, key=lambda t: t.validation[OBJECTIVE])
    for trial in search.trials:
        trial_tags = tags | {TAG_TRIAL: str(trial.number), TAG_CHOSEN: str(trial is best).lower()}
        with mlflow.start_run(
            experiment_id=experiment_id,
            run_name=f"{name}-trial-{trial.number}",
            nested=True,
            tags=trial_tags,
        ):
            mlflow.log_params({"candidate": name, **trial.params})
            scores = {f"validation_{key}": value for key, value in trial.validation.items()}
            mlflow.log_metrics(scores, dataset=datasets.validation)
            mlflow.log_metric("fit_seconds", trial.fit_seconds)


def log_reports(outcome: TrainingOutcome) -> None:
    """The chosen model's reports, per-intent table and plots as run artifacts."""
    mlflow.log_dict(outcome.report.to_dict(), "intent_report.json")
    # Lists, which log_dict writes as well but is not declared to take.
    candidates = [asdict(result) for result in outcome.candidates]
    errors = [error.to_dict() for error in outcome.errors]
    mlflow.log_text(json.dumps(errors, indent=2, default=str), "intent_errors.json")
    mlflow.log_text(json.dumps(candidates, indent=2), "candidates.json")
    mlflow.log_dict(outcome.fallback.to_dict(), "fallback_policy.json")
    mlflow.log_table(per_intent_table(outcome.report), "intent_metrics.json")
    mlflow.log_table(reliability_frame(outcome.calibration), "reliability.json")
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
        plot_reliability_diagram(outcome.calibration, folder / "reliability_diagram.png")
        mlflow.log_artifacts(scratch)
    log_out_of_scope(outcome)


def log_out_of_scope(outcome: TrainingOutcome) -> None:
    """The held-out-intent evaluation: metrics, settings, draws and curve (none when off)."""
    report = outcome.out_of_scope
    if report is None:
        return
    mlflow.log_params({f"oos_{key}": value for key, value in report.settings.items()})
    skipped = f"; out-of-scope evaluation {report.skipped}" if report.skipped else ""
    mlflow.log_params(
        {
            "fallback_policy": report.objective.policy.value,  # TRAIN_FALLBACK_POLICY
            "fallback_min_answered_accuracy": report.objective.min_answered_accuracy,
            "fallback_target_met": report.target_met,
            "fallback_policy_reason": f"{report.policy_reason}{skipped}"[:6000],
        }
    )
    # The chosen policy's figures on the validation split it was chosen on.
    policy = outcome.fallback
    mlflow.log_metrics(
        {
            "fallback_threshold": policy.threshold,
            "fallback_margin": policy.margin,
            "fallback_validation_coverage": policy.validation_coverage,
            "fallback_validation_answered_accuracy": policy.validation_answered_accuracy,
        }
        | report.metrics()
    )
    mlflow.log_dict(report.to_dict(), "out_of_scope/draws.json")
    if report.curve:
        mlflow.log_table(report.curve_frame(), "out_of_scope/curve.json")


def log_scores(outcome: TrainingOutcome, model_id: str, datasets: SplitDatasets) -> None:
    """The chosen model's headline scores on the run, linked to its model and their dataset."""
    test = {
        f"test_{key}" if key == "accuracy" else key: value for key, value in outcome.test.items()
    }
    validation = {f"validation_{key}": value for key, value in outcome.validation.items()}
    mlflow.log_metrics(test, model_id=model_id, dataset=datasets.test)
    mlflow.log_metrics(validation, model_id=model_id, dataset=datasets.validation)
    # ECE before and after temperature scaling, validation (held out from the train-only fit,
    # the temperature's own data) and test (the registered model).
    for table in outcome.calibration.tables:
        dataset = datasets.test if table.split == "test" else datasets.validation
        mlflow.log_metric(table.metric_name, table.ece, model_id=model_id, dataset=dataset)


def reliability_frame(report: CalibrationReport) -> pd.DataFrame:
    """Every reliability table as rows: split, calibrated, bin edges, count, confidence, hits."""
    rows = [
        {"split": table.split, "calibrated": table.calibrated, **one.to_dict()}
        for table in report.tables
        for one in table.bins
    ]
    return pd.DataFrame(rows)

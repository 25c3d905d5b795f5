"""Train the intent model: choose a candidate on validation (models/candidate_choice.py),
calibrate it on validation (models/held_out_calibration.py), refit it on train + validation,
score it on the frozen test split.

Plain DataFrames in, a fitted pipeline and its evaluation out: no MLflow, no Dagster.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from models.calibration import CalibrationReport, with_temperature
from models.candidate_choice import CandidateResult, search_then_refit
from models.candidates import Candidate
from models.evaluation import (
    IntentError,
    IntentReport,
    Predictions,
    intent_errors,
    intent_report,
    predict_labelled,
    summary_metrics,
)
from models.fallback import FallbackPolicy
from models.held_out_calibration import HeldOutCalibration, calibrate
from models.inputs import model_input
from models.out_of_scope import OutOfScopeReport, OutOfScopeSettings, evaluate_and_choose
from models.search import SearchSettings
from models.selection import SelectionBudget, SkippedCandidate

logger = logging.getLogger(__name__)


@dataclass
class TrainingOutcome:
    """The chosen model and everything needed to log and judge it."""

    candidate: Candidate
    pipeline: Any
    candidates: list[CandidateResult]
    validation: dict[str, float]  # of the candidate fitted without validation (held out)
    test: dict[str, float]  # of the registered pipeline (refitted, calibrated)
    test_predictions: Predictions
    report: IntentReport
    errors: list[IntentError]
    fallback: FallbackPolicy
    labels: list[str]
    calibration: CalibrationReport
    sizes: dict[str, int] = field(default_factory=dict)
    fitted_on: str = ""  # the splits the registered pipeline was fitted on, e.g. train+validation
    fitted_examples: int = 0  # how many rows they hold
    excluded_intents: list[str] = field(default_factory=list)
    skipped: list[SkippedCandidate] = field(default_factory=list)
    selection_examples: int = 0
    refit_seconds: float | None = None
    out_of_scope: OutOfScopeReport | None = None  # models/out_of_scope.py


def drop_thin_intents(
    splits: dict[str, pd.DataFrame], minimum: int
) -> tuple[dict[str, pd.DataFrame], list[str]]:
    """Remove intents with fewer than `minimum` training examples from every split.

    A classifier cannot learn (nor a calibrator cross-validate) an intent seen once or twice;
    such intents are reported, not silently trained on.
    """
    counts = splits["train"]["intent"].value_counts()
    every_intent = set().union(*(set(frame["intent"]) for frame in splits.values()))
    kept = set(counts[counts >= minimum].index)
    excluded = sorted(every_intent - kept)
    return {name: frame[frame["intent"].isin(kept)] for name, frame in splits.items()}, excluded


def _usable_splits(
    train: pd.DataFrame, validation: pd.DataFrame, test: pd.DataFrame, minimum: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, list[str]]:
    """The three splits without the intents under `minimum` training examples, and those intents.

    Raises ValueError when a split is left empty.
    """
    splits, excluded = drop_thin_intents(
        {"train": train, "validation": validation, "test": test}, minimum
    )
    if excluded:
        logger.warning("intents with under %d examples left out: %s", minimum, excluded)
    for name, split in splits.items():
        if split.empty:
            raise ValueError(f"the {name} split is empty: more labelled examples are needed")
    return splits["train"], splits["validation"], splits["test"], excluded


def _score_test(
    pipeline: Any, fallback: FallbackPolicy, test: pd.DataFrame
) -> tuple[Predictions, np.ndarray, dict[str, float]]:
    """Predictions, probabilities and metrics (fallback rate, answered accuracy too) on test."""
    predictions, probabilities = predict_labelled(pipeline, model_input(test), test["intent"])
    metrics = summary_metrics(predictions)
    answered = ~fallback.is_fallback(probabilities)
    metrics["fallback_rate"] = float(1 - answered.mean())
    metrics["answered_accuracy"] = (
        float(predictions.correct[answered].mean()) if answered.any() else 0.0
    )
    return predictions, probabilities, metrics


def _calibration_report(
    candidate: Candidate,
    refit: Any,
    held_out: HeldOutCalibration,
    test: pd.DataFrame,
    test_predictions: Predictions,
    test_probabilities: np.ndarray,
) -> CalibrationReport:
    """Reliability before and after the temperature, on validation and on test."""
    test_raw = (
        test_probabilities if candidate.calibrated else refit.predict_proba(model_input(test))
    )
    return CalibrationReport.measure(
        held_out.temperature,
        not candidate.calibrated,
        {
            "validation": (held_out.raw, held_out.calibrated, held_out.predictions.correct),
            "test": (test_raw, test_probabilities, test_predictions.correct),
        },
    )


def train_intent_model(
    candidates: list[Candidate],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    fallback_accuracy_budget: float = 0.02,
    min_examples_per_intent: int = 5,
    budget: SelectionBudget | None = None,
    out_of_scope: OutOfScopeSettings | None = None,
    search: SearchSettings | None = None,
) -> TrainingOutcome:
    """Select a candidate within `budget`, calibrate it on validation, refit, score on test.

    Temperature and fallback policy are chosen on the validation predictions of the winner
    fitted without validation, then applied to the winner refitted on train + validation,
    whose scores on the frozen test split are the ones reported.
    """
    train, validation, test, excluded = _usable_splits(
        train, validation, test, min_examples_per_intent
    )
    found = search_then_refit(candidates, train, validation, budget or SelectionBudget(), search)
    candidate, selection = found.candidate, found.selection
    held_out = calibrate(candidate, found.held_out, validation)
    fallback, oos = evaluate_and_choose(
        candidate, train, validation, held_out, fallback_accuracy_budget, budget, out_of_scope
    )
    scaled = with_temperature(found.refit, held_out.temperature)
    pipeline = found.refit if candidate.calibrated else scaled
    test_predictions, test_probabilities, test_metrics = _score_test(pipeline, fallback, test)
    return TrainingOutcome(
        candidate=candidate,
        pipeline=pipeline,
        candidates=selection.candidates,
        validation=summary_metrics(held_out.predictions),
        test=test_metrics,
        test_predictions=test_predictions,
        report=intent_report(test_predictions),
        errors=intent_errors(test_predictions),
        fallback=fallback,
        labels=sorted(train["intent"].unique()),
        calibration=_calibration_report(
            candidate, found.refit, held_out, test, test_predictions, test_probabilities
        ),
        sizes={"train": len(train), "validation": len(validation), "test": len(test)},
        fitted_on=found.fitted_on,
        fitted_examples=found.fitted_examples,
        excluded_intents=excluded,
        skipped=selection.skipped,
        selection_examples=selection.examples,
        refit_seconds=selection.refit_seconds,
        out_of_scope=oos,
    )

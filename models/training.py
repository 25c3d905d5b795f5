"""Fit the declared candidates, choose one on validation data, score it on the frozen test split.

Plain DataFrames in, a fitted pipeline and its evaluation out: no MLflow, no Dagster.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

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
from models.fallback import FallbackPolicy, choose_fallback_policy

logger = logging.getLogger(__name__)
MODEL_INPUT_COLUMNS = ("text", "context")


@dataclass
class CandidateResult:
    """One candidate's validation scores."""

    name: str
    validation: dict[str, float]
    fit_seconds: float


@dataclass
class TrainingOutcome:
    """The chosen model and everything needed to log and judge it."""

    candidate: Candidate
    pipeline: Any
    candidates: list[CandidateResult]
    validation: dict[str, float]
    test: dict[str, float]
    test_predictions: Predictions
    report: IntentReport
    errors: list[IntentError]
    fallback: FallbackPolicy
    labels: list[str]
    sizes: dict[str, int] = field(default_factory=dict)
    excluded_intents: list[str] = field(default_factory=list)


def model_input(frame: pd.DataFrame) -> pd.DataFrame:
    """The columns a model is fitted on and served with."""
    return frame.loc[:, list(MODEL_INPUT_COLUMNS)].reset_index(drop=True)


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


def fit_and_select(
    candidates: list[Candidate],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    selection_metric: str = "macro_f1",
) -> tuple[Candidate, Any, list[CandidateResult]]:
    """Fit every candidate on train; return the best by `selection_metric` on validation."""
    results: list[CandidateResult] = []
    best: tuple[float, Candidate, Any] | None = None
    for number, candidate in enumerate(candidates, start=1):
        logger.info(
            "fitting candidate %s (%d/%d) on %d examples",
            candidate.name,
            number,
            len(candidates),
            len(train),
        )
        started = time.perf_counter()
        pipeline = candidate.build().fit(model_input(train), train["intent"].to_numpy())
        seconds = time.perf_counter() - started
        predictions, _ = predict_labelled(pipeline, model_input(validation), validation["intent"])
        scores = summary_metrics(predictions)
        results.append(CandidateResult(candidate.name, scores, seconds))
        logger.info(
            "candidate %s: validation %s %.4f, accuracy %.4f (fit %.1fs)",
            candidate.name,
            selection_metric,
            scores[selection_metric],
            scores["accuracy"],
            seconds,
        )
        if best is None or scores[selection_metric] > best[0]:
            best = (scores[selection_metric], candidate, pipeline)
    if best is None:
        raise ValueError("no candidates to fit")
    logger.info("chose %s (best validation %s)", best[1].name, selection_metric)
    return best[1], best[2], results


def train_intent_model(
    candidates: list[Candidate],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    fallback_accuracy_budget: float = 0.02,
    min_examples_per_intent: int = 5,
) -> TrainingOutcome:
    """Select a candidate, calibrate its fallback on validation and evaluate it on test."""
    splits, excluded = drop_thin_intents(
        {"train": train, "validation": validation, "test": test}, min_examples_per_intent
    )
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    if excluded:
        logger.warning(
            "intents with under %d examples left out: %s", min_examples_per_intent, excluded
        )
    for name, split in (("train", train), ("validation", validation), ("test", test)):
        if split.empty:
            raise ValueError(f"the {name} split is empty: more labelled examples are needed")
    candidate, pipeline, results = fit_and_select(candidates, train, validation)
    validation_predictions, validation_probabilities = predict_labelled(
        pipeline, model_input(validation), validation["intent"]
    )
    fallback = choose_fallback_policy(
        validation_probabilities, validation_predictions.correct, fallback_accuracy_budget
    )
    test_predictions, test_probabilities = predict_labelled(
        pipeline, model_input(test), test["intent"]
    )
    test_metrics = summary_metrics(test_predictions)
    answered = ~fallback.is_fallback(test_probabilities)
    test_metrics["fallback_rate"] = float(1 - answered.mean())
    test_metrics["answered_accuracy"] = (
        float(test_predictions.correct[answered].mean()) if answered.any() else 0.0
    )
    return TrainingOutcome(
        candidate=candidate,
        pipeline=pipeline,
        candidates=results,
        validation=summary_metrics(validation_predictions),
        test=test_metrics,
        test_predictions=test_predictions,
        report=intent_report(test_predictions),
        errors=intent_errors(test_predictions),
        fallback=fallback,
        labels=sorted(train["intent"].unique()),
        sizes={"train": len(train), "validation": len(validation), "test": len(test)},
        excluded_intents=excluded,
    )

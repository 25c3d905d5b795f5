"""Fit the declared candidates, choose one on validation data, score it on the frozen test split.

Plain DataFrames in, a fitted pipeline and its evaluation out: no MLflow, no Dagster.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from features.dialogue import has_dialogue_context
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
from models.selection import BudgetClock, SelectionBudget, SkippedCandidate, selection_sample

logger = logging.getLogger(__name__)
MODEL_INPUT_COLUMNS = ("text", "context")


@dataclass
class CandidateResult:
    """One candidate's validation scores."""

    name: str
    validation: dict[str, float]
    fit_seconds: float


@dataclass
class Selection:
    """What the candidate search saw and left out; logged with the chosen model."""

    candidates: list[CandidateResult]
    skipped: list[SkippedCandidate]
    examples: int  # training examples the candidates were compared on
    refit_seconds: float | None  # the winner's fit on every training example, when sampled


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
    skipped: list[SkippedCandidate] = field(default_factory=list)
    selection_examples: int = 0
    refit_seconds: float | None = None


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
    budget_seconds: float = float("inf"),
) -> tuple[Candidate, Any, Selection]:
    """Fit the candidates on train within `budget_seconds`; the best on validation wins.

    A candidate whose estimated fit (models/selection.py) would overrun what is left of the
    budget is skipped with the reason; the cheapest one is always fitted. Candidates that read
    conversation context are skipped when no training example has any.
    """
    intents = int(train["intent"].nunique())
    skipped: list[SkippedCandidate] = []
    if "context" not in train or not has_dialogue_context(train["context"]):
        # Single utterances (Banking77): a context candidate would fit text-only features again.
        skipped = [
            SkippedCandidate(c.name, f"{c.name}: no training example has conversation context")
            for c in candidates
            if c.uses_context
        ]
        candidates = [c for c in candidates if not c.uses_context] or candidates
    cheapest = min(candidates, key=lambda c: c.cost.estimate(len(train), intents), default=None)
    clock = BudgetClock(budget_seconds)
    results: list[CandidateResult] = []
    best: tuple[float, Candidate, Any] | None = None
    for number, candidate in enumerate(candidates, start=1):
        reason = clock.skip_reason(candidate.name, candidate.cost, len(train), intents)
        if reason is not None and candidate is not cheapest:
            logger.warning("skipped candidate %s", reason)
            skipped.append(SkippedCandidate(candidate.name, reason))
            continue
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
        clock.record(candidate.cost, len(train), intents, seconds)
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
    return best[1], best[2], Selection(results, skipped, len(train), None)


def search_then_refit(
    candidates: list[Candidate],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    budget: SelectionBudget,
) -> tuple[Candidate, Any, Selection]:
    """Choose on a sample of train (models/selection.py), then fit the winner on all of it."""
    sample = selection_sample(train, budget.max_examples, budget.seed)
    if len(sample) < len(train):
        logger.info(
            "comparing candidates on %d of %d training examples (TRAIN_SELECTION_MAX_EXAMPLES)",
            len(sample),
            len(train),
        )
    candidate, pipeline, selection = fit_and_select(
        candidates, sample, validation, budget_seconds=budget.seconds
    )
    if len(sample) == len(train):
        return candidate, pipeline, selection
    logger.info("fitting %s on all %d training examples", candidate.name, len(train))
    started = time.perf_counter()
    pipeline = candidate.build().fit(model_input(train), train["intent"].to_numpy())
    selection.refit_seconds = time.perf_counter() - started
    logger.info("%s fitted on all examples in %.1fs", candidate.name, selection.refit_seconds)
    return candidate, pipeline, selection


def train_intent_model(
    candidates: list[Candidate],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    test: pd.DataFrame,
    fallback_accuracy_budget: float = 0.02,
    min_examples_per_intent: int = 5,
    budget: SelectionBudget | None = None,
) -> TrainingOutcome:
    """Select a candidate within `budget`, calibrate its fallback on validation, score on test."""
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
    candidate, pipeline, selection = search_then_refit(
        candidates, train, validation, budget or SelectionBudget()
    )
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
        candidates=selection.candidates,
        validation=summary_metrics(validation_predictions),
        test=test_metrics,
        test_predictions=test_predictions,
        report=intent_report(test_predictions),
        errors=intent_errors(test_predictions),
        fallback=fallback,
        labels=sorted(train["intent"].unique()),
        sizes={"train": len(train), "validation": len(validation), "test": len(test)},
        excluded_intents=excluded,
        skipped=selection.skipped,
        selection_examples=selection.examples,
        refit_seconds=selection.refit_seconds,
    )

"""Fit the declared candidates, choose one on validation data, calibrate it on validation data,
refit it on train + validation, score it on the frozen test split.

Plain DataFrames in, a fitted pipeline and its evaluation out: no MLflow, no Dagster.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

from features.dialogue import has_dialogue_context
from models.calibration import (
    CalibrationReport,
    class_index,
    fit_temperature,
    scale_probabilities,
    with_temperature,
)
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
from models.inputs import model_input
from models.out_of_scope import OutOfScopeReport, OutOfScopeSettings, evaluate_and_choose
from models.search import SearchData, SearchRecord, SearchSettings, search_candidate
from models.selection import BudgetClock, SelectionBudget, SkippedCandidate, selection_sample
from models.weighted_examples import fit_distinct

logger = logging.getLogger(__name__)


@dataclass
class CandidateResult:
    """One candidate's validation scores."""

    name: str
    validation: dict[str, float]
    fit_seconds: float
    search: SearchRecord | None = None  # its trials and chosen params (models/search.py)


@dataclass
class Selection:
    """What the candidate search saw and left out; logged with the chosen model."""

    candidates: list[CandidateResult]
    skipped: list[SkippedCandidate]
    examples: int  # training examples the candidates were compared on
    refit_seconds: float | None  # the winner's fit on every training and validation example


@dataclass
class SearchResult:
    """The chosen candidate fitted twice: for the search, and on everything but test."""

    candidate: Candidate
    held_out: Any  # fitted on train (or its sample): validation is held out from it
    refit: Any  # fitted on train + validation: the model registered
    selection: Selection
    fitted_on: str  # the splits the refit saw
    fitted_examples: int  # how many rows they hold


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


def fit_and_select(
    candidates: list[Candidate],
    train: pd.DataFrame,
    validation: pd.DataFrame,
    selection_metric: str = "macro_f1",
    budget_seconds: float = float("inf"),
    search: SearchSettings | None = None,
) -> tuple[Candidate, Any, Selection]:
    """Search each candidate (models/search.py) on train within `budget_seconds`; the best on
    validation wins (its best trial's params). Without `search`: the declared params only.

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
    labels = (train["intent"].to_numpy(), validation["intent"])
    data = SearchData(model_input(train), model_input(validation), *labels)
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
        found = search_candidate(candidate, data, search, clock, len(candidates) - number + 1)
        candidate, pipeline, scores = found.candidate, found.pipeline, found.validation
        results.append(CandidateResult(candidate.name, scores, found.fit_seconds, found.record))
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
    search: SearchSettings | None = None,
) -> SearchResult:
    """Choose on (a sample of) train, then fit the winner once on train + validation.

    The winner as fitted for the search has not seen validation: its validation predictions
    calibrate the temperature and the fallback policy. The refit, on every training and
    validation example, is the model registered (the frozen test split stays out); on large
    data it is the winner's only fit on all the data, not a second one after a train-only fit.
    """
    sample = selection_sample(train, budget.max_examples, budget.seed)
    if len(sample) < len(train):
        logger.info(
            "comparing candidates on %d of %d training examples (TRAIN_SELECTION_MAX_EXAMPLES)",
            len(sample),
            len(train),
        )
    candidate, held_out, selection = fit_and_select(
        candidates, sample, validation, budget_seconds=budget.seconds, search=search
    )
    everything = pd.concat([train, validation])
    logger.info(
        "fitting %s on all %d training + validation examples", candidate.name, len(everything)
    )
    started = time.perf_counter()
    inputs, labels = model_input(everything), everything["intent"].to_numpy()
    refit, _ = fit_distinct(candidate.build(), inputs, labels, candidate.reads)  # counts as weights
    selection.refit_seconds = time.perf_counter() - started
    logger.info("%s refitted in %.1fs", candidate.name, selection.refit_seconds)
    return SearchResult(candidate, held_out, refit, selection, "train+validation", len(everything))


@dataclass(frozen=True)
class HeldOutCalibration:
    """The temperature chosen on validation, and the validation predictions it was chosen on."""

    temperature: float  # 1.0 for a candidate that calibrates itself
    predictions: Predictions
    raw: np.ndarray  # validation probabilities before scaling
    calibrated: np.ndarray  # ...and after


def calibrate(candidate: Candidate, held_out: Any, validation: pd.DataFrame) -> HeldOutCalibration:
    """The temperature for `candidate`, from `held_out`'s validation predictions."""
    predictions, raw = predict_labelled(held_out, model_input(validation), validation["intent"])
    if candidate.calibrated:
        return HeldOutCalibration(1.0, predictions, raw, raw)
    index, known = class_index(held_out.classes_, validation["intent"].to_numpy())
    temperature = fit_temperature(raw[known], index)
    logger.info("%s: temperature %.3f fitted on validation", candidate.name, temperature)
    return HeldOutCalibration(temperature, predictions, raw, scale_probabilities(raw, temperature))


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
    found = search_then_refit(candidates, train, validation, budget or SelectionBudget(), search)
    candidate, selection = found.candidate, found.selection
    held_out = calibrate(candidate, found.held_out, validation)
    validation_predictions = held_out.predictions
    fallback, oos = evaluate_and_choose(
        candidate, train, validation, held_out, fallback_accuracy_budget, budget, out_of_scope
    )
    scaled = with_temperature(found.refit, held_out.temperature)
    pipeline = found.refit if candidate.calibrated else scaled
    test_predictions, test_probabilities, test_metrics = _score_test(pipeline, fallback, test)
    test_raw = (
        test_probabilities if candidate.calibrated else found.refit.predict_proba(model_input(test))
    )
    calibration = CalibrationReport.measure(
        held_out.temperature,
        not candidate.calibrated,
        {
            "validation": (held_out.raw, held_out.calibrated, validation_predictions.correct),
            "test": (test_raw, test_probabilities, test_predictions.correct),
        },
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
        calibration=calibration,
        sizes={"train": len(train), "validation": len(validation), "test": len(test)},
        fitted_on=found.fitted_on,
        fitted_examples=found.fitted_examples,
        excluded_intents=excluded,
        skipped=selection.skipped,
        selection_examples=selection.examples,
        refit_seconds=selection.refit_seconds,
        out_of_scope=oos,
    )

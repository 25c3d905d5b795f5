"""Compare the declared candidates on validation, then refit the winner on train + validation.

Each candidate is searched (models/search.py) on (a sample of) the training split within the
time budget (models/selection.py); the best on validation wins. The winner is kept as fitted for
the search, which has not seen validation (it calibrates the trained model), and fitted once
more on every training and validation example (the model registered). Pure: no MLflow.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from typing import Any

import pandas as pd

from features.dialogue import has_dialogue_context
from models.candidates import Candidate
from models.inputs import model_input
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

"""Hyper-parameter search: one Optuna study per candidate over its knobs (models/search_space.py).

Each trial fits the candidate on the selection sample and scores it on validation by macro-F1,
the metric the candidates are then compared on (models/candidate_choice.py). Trial 0 is always the
candidate's declared configuration, so the search never returns something that scored worse on
validation than no search; the TPE sampler is seeded (TRAIN_SEARCH_SEED), so the same data and
settings give the same trials. Budget: at most TRAIN_SEARCH_TRIALS trials and
TRAIN_SEARCH_SECONDS of fitting per candidate, and never more than an equal share of what is left
of TRAIN_SELECTION_SECONDS (the overall guard, models/selection.py) for the candidates still to
search: a trial that would overrun (judged by the longest trial so far) is not started.
The best trial's params become the candidate's params: its refit and its logged params use
them, and `rebuild` makes the same unfitted pipeline from a run's logged params. Pure: no MLflow.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from functools import partial
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.search_space import Knob, KnobValue, check_ranges, knobs_for
from models.selection import BudgetClock

if TYPE_CHECKING:  # scikit-learn comes with these: imported where a pipeline is built or fitted
    import optuna
    from sklearn.pipeline import Pipeline

    from models.candidates import Candidate

logger = logging.getLogger(__name__)
OBJECTIVE = "macro_f1"


class SearchSettings(BaseSettings):
    """The search's budget and seed, and optional knob ranges replacing the declared ones.

    TRAIN_SEARCH_TRIALS (per candidate; 1 = no search, the declared configuration only),
    TRAIN_SEARCH_SECONDS (fit seconds per candidate), TRAIN_SEARCH_SEED, TRAIN_SEARCH_SPACE
    (JSON: {"tfidf_logreg": {"C": [1, 50]}}). A training run's config overrides them.
    """

    model_config = SettingsConfigDict(env_prefix="TRAIN_SEARCH_", frozen=True)

    trials: int = Field(default=8, ge=1)
    seconds: float = Field(default=120.0, gt=0)
    seed: int = 0
    space: dict[str, dict[str, tuple[float, float]]] = Field(default_factory=dict)

    @field_validator("space")
    @classmethod
    def _known_knobs(
        cls, space: dict[str, dict[str, tuple[float, float]]]
    ) -> dict[str, dict[str, tuple[float, float]]]:
        check_ranges(space)
        return space


@dataclass(frozen=True)
class SearchData:
    """What every trial is fitted on (the selection sample) and scored on (validation)."""

    train: pd.DataFrame
    validation: pd.DataFrame
    train_labels: np.ndarray
    validation_labels: pd.Series


@dataclass(frozen=True)
class Trial:
    """One fit of the search: its knob values, validation scores and fit time."""

    number: int
    params: dict[str, KnobValue]
    validation: dict[str, float]
    fit_seconds: float


@dataclass(frozen=True)
class SearchRecord:
    """What a candidate's search logs: its params as chosen, every trial, why it stopped early."""

    params: dict[str, Any]  # the candidate's params, knobs at the best trial's values
    trials: list[Trial] = field(default_factory=list)
    stopped: str | None = None  # why fewer trials ran than TRAIN_SEARCH_TRIALS


@dataclass
class CandidateSearch:
    """A candidate's search: the best trial's configuration and fitted pipeline, and the record."""

    candidate: Candidate  # params and build of the best trial
    pipeline: Any  # the best trial's fit (validation held out)
    validation: dict[str, float]
    fit_seconds: float  # of the best trial
    record: SearchRecord


def build_with(build: Any, knobs: tuple[Knob, ...], params: Mapping[str, KnobValue]) -> Pipeline:
    """`build()` with each knob named in `params` set on it."""
    pipeline = build()
    values = {knob.path: knob.pipeline_value(params[knob.name]) for knob in knobs}
    if values:
        pipeline.set_params(**values)
    return pipeline


def declared_params(candidate: Candidate, knobs: tuple[Knob, ...]) -> dict[str, KnobValue]:
    """The knob values of the candidate as declared (its factory's defaults)."""
    held = candidate.build().get_params()
    return {knob.name: knob.knob_value(held[knob.path]) for knob in knobs}


def tuned(candidate: Candidate, knobs: tuple[Knob, ...], params: dict[str, KnobValue]) -> Candidate:
    """`candidate` with `params`: logged with it, and applied by its `build`."""
    changed = {k: v for k, v in params.items() if candidate.params.get(k) != v}
    description = candidate.description
    if changed:
        description += " — searched: " + ", ".join(f"{k}={_short(v)}" for k, v in changed.items())
    return replace(
        candidate,
        description=description,
        params={**candidate.params, **params},
        build=partial(build_with, candidate.build, knobs, dict(params)),
    )


def rebuild(name: str, logged: Mapping[str, str]) -> Pipeline:
    """The unfitted pipeline of candidate `name` with the knob values a run logged."""
    from models.candidates import SEARCH_SPACE

    knobs = tuple(knob for knob in knobs_for(name, {}) if knob.name in logged)
    params = {knob.name: knob.parse(logged[knob.name]) for knob in knobs}
    return build_with(SEARCH_SPACE[name].build, knobs, params)


def search_candidate(
    candidate: Candidate,
    data: SearchData,
    settings: SearchSettings | None,
    clock: BudgetClock,
    candidates_left: int,
) -> CandidateSearch:
    """Search `candidate`'s knobs within its share of the budget; the best trial by macro-F1.

    `clock` (the selection budget) records every trial's fit; `candidates_left` counts this
    one and those still to search, which share what is left of it. No `settings`: one trial,
    the declared configuration (what training did before the search).
    """
    settings = settings or SearchSettings(trials=1)
    knobs = knobs_for(candidate.name, settings.space)
    space = {knob.name: knob.distribution() for knob in knobs}
    study = _study(candidate, knobs, settings.seed)
    left = max(clock.seconds - clock.spent, 0.0) / max(candidates_left, 1)
    allowance = min(settings.seconds, left)
    intents = int(pd.Series(data.train_labels).nunique())
    trials: list[Trial] = []
    best: tuple[Trial, Any] | None = None
    stopped = None
    for number in range(settings.trials if knobs else 1):
        stopped = _stop_reason(candidate.name, trials, allowance)
        if stopped is not None:
            logger.info("%s", stopped)
            break
        asked = study.ask(space)
        trial, pipeline = _fit_trial(candidate, knobs, number, dict(asked.params), data)
        clock.record(candidate.cost, len(data.train), intents, trial.fit_seconds)
        study.tell(asked, trial.validation[OBJECTIVE])
        trials.append(trial)
        if best is None or trial.validation[OBJECTIVE] > best[0].validation[OBJECTIVE]:
            best = (trial, pipeline)
    assert best is not None  # the loop always runs its first trial
    trial, pipeline = best
    logger.info(
        "candidate %s: validation %s %.4f, accuracy %.4f (best of %d trials, fit %.1fs)",
        candidate.name,
        OBJECTIVE,
        trial.validation[OBJECTIVE],
        trial.validation["accuracy"],
        len(trials),
        trial.fit_seconds,
    )
    chosen = tuned(candidate, knobs, trial.params)
    record = SearchRecord(chosen.params, trials, stopped)
    return CandidateSearch(chosen, pipeline, trial.validation, trial.fit_seconds, record)


def _study(candidate: Candidate, knobs: tuple[Knob, ...], seed: int) -> optuna.Study:
    """A seeded TPE study of `candidate`'s knobs whose first trial is its declared configuration
    (when the knobs' ranges admit it)."""
    import optuna  # imported on use: the code location and serving never need it

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    sampler = optuna.samplers.TPESampler(seed=seed, n_startup_trials=3)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    declared = declared_params(candidate, knobs)
    if all(knob.admits(declared[knob.name]) for knob in knobs):
        study.enqueue_trial(declared)  # trial 0: the configuration as declared
    return study


def _stop_reason(name: str, trials: list[Trial], allowance: float) -> str | None:
    """Why candidate `name`'s search stops before another trial, or None: when another as long
    as its longest so far would overrun `allowance` seconds of fitting."""
    spent = sum(t.fit_seconds for t in trials)
    longest = max((t.fit_seconds for t in trials), default=0.0)
    if not trials or spent + longest <= allowance:
        return None
    return (
        f"{name}: stopped after {len(trials)} trials: another (~{longest:.0f} s) "
        f"would overrun its {allowance:.0f} s of search"
    )


def _fit_trial(
    candidate: Candidate,
    knobs: tuple[Knob, ...],
    number: int,
    params: dict[str, KnobValue],
    data: SearchData,
) -> tuple[Trial, Any]:
    """Trial `number`: `candidate` with `params` fitted on the sample, scored on validation."""
    from models.evaluation import predict_labelled, summary_metrics
    from models.weighted_examples import fit_distinct

    started = time.perf_counter()
    pipeline = build_with(candidate.build, knobs, params)
    # Fitted like the refit (models/candidate_choice.py), so the validation predictions that
    # calibrate the refit's temperature and fallback come from a model built the same way.
    pipeline, _ = fit_distinct(pipeline, data.train, data.train_labels, candidate.reads)
    seconds = time.perf_counter() - started
    predictions, _ = predict_labelled(pipeline, data.validation, data.validation_labels)
    scores = summary_metrics(predictions)
    logger.info(
        "candidate %s trial %d: validation %s %.4f (fit %.1fs) %s",
        candidate.name,
        number,
        OBJECTIVE,
        scores[OBJECTIVE],
        seconds,
        {k: _short(v) for k, v in params.items()},
    )
    return Trial(number, params, scores, seconds), pipeline


def _short(value: KnobValue) -> str:
    return f"{value:.4g}" if isinstance(value, float) else str(value)

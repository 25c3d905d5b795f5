"""How the fallback copes with intents the model never saw, and a fallback that aims at it.

A deployed bot meets requests outside its intents; its fallback should catch them. To measure
that without out-of-scope data, each of `draws` seeded draws holds `k` intents out (a share of
the intents, at least one): the chosen candidate is fitted on the training sample without them,
and the validation rows of those intents are its out-of-scope rows, those of the kept intents
its in-scope rows. A candidate that does not calibrate itself gets a temperature fitted on the
in-scope rows (models/calibration.py), as the trained model does. Measured per draw, with the
fallback policy training chose: out-of-scope recall (held-out rows answered `nlu_fallback`) and
answered in-scope accuracy; and the curve of recall at each answered-accuracy level.

The draws also choose the fallback policy (TRAIN_FALLBACK_POLICY, models/fallback_objective.py):
`answered_accuracy` (default) takes the policy answering the most in-scope messages that reaches
TRAIN_OOS_TARGET_RECALL (0.8) with answered accuracy ≥ TRAIN_FALLBACK_MIN_ANSWERED_ACCURACY;
`coverage` the accuracy-budget rule (models/fallback.py), aiming at the recall target only
within that budget. With no draws (TRAIN_OOS_DRAWS=0, or too few intents) there is no recall to
aim at: both use the accuracy-budget rule, and the reason says so.
Costs `draws` extra fits on the selection sample. Pure: no MLflow.
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.fallback import FallbackPolicy
from models.fallback_objective import FallbackSettings, choose_policy
from models.selection import SelectionBudget, selection_sample

if TYPE_CHECKING:  # scikit-learn and SciPy come with these: imported by the draws that fit
    from models.candidates import Candidate
    from models.held_out_calibration import HeldOutCalibration

logger = logging.getLogger(__name__)
# Answered in-scope accuracy levels of the logged curve.
CURVE_LEVELS = (0.90, 0.92, 0.94, 0.95, 0.96, 0.97, 0.98, 0.99)
_INPUT_COLUMNS = ["text", "context"]  # as models/training.py fits and serves


class OutOfScopeSettings(BaseSettings):
    """TRAIN_OOS_DRAWS (0: off), TRAIN_OOS_HOLDOUT_FRACTION, TRAIN_OOS_TARGET_RECALL (the
    fallback policy's out-of-scope recall target), TRAIN_OOS_SEED."""

    model_config = SettingsConfigDict(env_prefix="TRAIN_OOS_", frozen=True)

    draws: int = Field(default=2, ge=0, le=50)
    holdout_fraction: float = Field(default=0.1, gt=0, lt=1)
    target_recall: float = Field(default=0.8, ge=0, le=1)
    seed: int = 0


@dataclass(frozen=True)
class DrawResult:
    """One draw: the intents held out and how the chosen fallback treated their rows."""

    held_out: list[str]
    in_scope_rows: int
    out_of_scope_rows: int
    temperature: float
    recall: float  # out-of-scope rows answered nlu_fallback
    in_scope_answered_accuracy: float
    fit_seconds: float


@dataclass(frozen=True)
class CurvePoint:
    """Out-of-scope recall of the lowest threshold whose answered in-scope accuracy ≥ level."""

    level: float
    recall_mean: float
    recall_min: float
    threshold_mean: float
    coverage_mean: float  # share of in-scope rows answered at that threshold
    reached: int  # draws that reach the level at all


@dataclass(frozen=True)
class DrawProbabilities:
    """A draw's calibrated probabilities, before the policy is known."""

    held_out: list[str]
    classes: list[str]  # the intents the draw's model was fitted on
    in_scope: np.ndarray
    correct: np.ndarray
    out_of_scope: np.ndarray
    temperature: float
    fit_seconds: float


@dataclass(frozen=True)
class OutOfScopeReport:
    """Every draw, the curve, and how the fallback policy was chosen."""

    settings: dict[str, float]
    policy_reason: str
    target_met: bool = False
    objective: FallbackSettings = field(default_factory=FallbackSettings)
    draws: list[DrawResult] = field(default_factory=list)
    curve: list[CurvePoint] = field(default_factory=list)
    skipped: str = ""  # why no draw was made, when none was
    seconds: float = 0.0

    def metrics(self) -> dict[str, float]:
        """oos_recall (mean and min over draws), answered in-scope accuracy (mean), cost.

        Four flat metrics only (a run's metrics stay headline scores); per draw: `to_dict`.
        """
        if not self.draws:
            return {}
        recall = [d.recall for d in self.draws]
        accuracy = [d.in_scope_answered_accuracy for d in self.draws]
        return {
            "oos_recall": float(np.mean(recall)),
            "oos_recall_min": float(np.min(recall)),
            "oos_in_scope_answered_accuracy": float(np.mean(accuracy)),
            "oos_seconds": self.seconds,
        }

    def to_dict(self) -> dict[str, Any]:
        """The draws (held-out intents per draw), settings and reason, for a JSON artifact."""
        return {
            "settings": self.settings,
            "policy": self.objective.policy.value,
            "min_answered_accuracy": self.objective.min_answered_accuracy,
            "policy_reason": self.policy_reason,
            "target_met": self.target_met,
            "skipped": self.skipped,
            "seconds": round(self.seconds, 2),
            "recall_max": max((d.recall for d in self.draws), default=0.0),
            "draws": [asdict(d) for d in self.draws],
        }

    def curve_frame(self) -> pd.DataFrame:
        """The curve as a table: one row per answered in-scope accuracy level."""
        return pd.DataFrame([asdict(point) for point in self.curve])


def holdout_draws(intents: list[str], settings: OutOfScopeSettings) -> list[list[str]]:
    """`draws` seeded draws of k = max(1, round(fraction × intents)) intents; [] when fewer
    than two intents would be left to train on."""
    k = max(1, round(settings.holdout_fraction * len(intents)))
    if settings.draws == 0 or len(intents) - k < 2:
        return []
    rng = np.random.default_rng(settings.seed)
    ordered = sorted(intents)
    return [
        sorted(rng.choice(ordered, size=k, replace=False).tolist()) for _ in range(settings.draws)
    ]


def run_draw(
    candidate: Candidate, sample: pd.DataFrame, validation: pd.DataFrame, held_out: list[str]
) -> DrawProbabilities:
    """Fit without `held_out`; its calibrated probabilities on in- and out-of-scope rows."""
    from models.calibration import class_index, fit_temperature, scale_probabilities
    from models.weighted_examples import fit_distinct

    kept = sample[~sample["intent"].isin(held_out)]
    started = time.perf_counter()
    inputs, labels = kept[_INPUT_COLUMNS], kept["intent"].to_numpy()
    model, _ = fit_distinct(candidate.build(), inputs, labels, candidate.reads)  # as the refit
    seconds = time.perf_counter() - started
    outside = validation["intent"].isin(held_out)
    inside = validation[~outside & validation["intent"].isin(model.classes_)]
    in_scope = model.predict_proba(inside[_INPUT_COLUMNS])
    out_of_scope = model.predict_proba(validation.loc[outside, _INPUT_COLUMNS])
    truth = inside["intent"].to_numpy()
    temperature = 1.0
    if not candidate.calibrated:
        index, _ = class_index(model.classes_, truth)
        temperature = fit_temperature(in_scope, index)
        in_scope = scale_probabilities(in_scope, temperature)
        out_of_scope = scale_probabilities(out_of_scope, temperature)
    correct = np.asarray(model.classes_, dtype=object)[in_scope.argmax(axis=1)] == truth
    classes = [str(name) for name in model.classes_]
    return DrawProbabilities(
        held_out, classes, in_scope, correct, out_of_scope, temperature, seconds
    )


def measure_draw(draw: DrawProbabilities, policy: FallbackPolicy) -> DrawResult:
    answered = ~policy.is_fallback(draw.in_scope)
    return DrawResult(
        held_out=draw.held_out,
        in_scope_rows=len(draw.in_scope),
        out_of_scope_rows=len(draw.out_of_scope),
        temperature=round(draw.temperature, 4),
        recall=float(policy.is_fallback(draw.out_of_scope).mean()),
        in_scope_answered_accuracy=float(draw.correct[answered].mean()) if answered.any() else 0.0,
        fit_seconds=round(draw.fit_seconds, 2),
    )


def _lowest_threshold(draw: DrawProbabilities, level: float) -> float | None:
    """The lowest threshold (no margin) whose answered in-scope accuracy is at least `level`."""
    top = draw.in_scope.max(axis=1)
    order = np.argsort(-top)
    # Answering the n most confident rows: accuracy of each prefix, threshold = nth confidence.
    prefix = np.cumsum(draw.correct[order]) / np.arange(1, len(order) + 1)
    meets = np.flatnonzero(prefix >= level)
    return float(top[order][meets[-1]]) if meets.size else None


def threshold_curve(
    draws: list[DrawProbabilities], levels: tuple[float, ...] = CURVE_LEVELS
) -> list[CurvePoint]:
    """Out-of-scope recall at each answered in-scope accuracy level, over the draws."""
    points = []
    for level in levels:
        found = [(d, t) for d in draws if (t := _lowest_threshold(d, level)) is not None]
        recall = [float((d.out_of_scope.max(axis=1) < t).mean()) for d, t in found]
        coverage = [float((d.in_scope.max(axis=1) >= t).mean()) for d, t in found]
        points.append(
            CurvePoint(
                level=level,
                recall_mean=float(np.mean(recall)) if recall else 0.0,
                recall_min=float(np.min(recall)) if recall else 0.0,
                threshold_mean=float(np.mean([t for _, t in found])) if found else 0.0,
                coverage_mean=float(np.mean(coverage)) if coverage else 0.0,
                reached=len(found),
            )
        )
    return points


def evaluate_and_choose(
    candidate: Candidate,
    train: pd.DataFrame,
    validation: pd.DataFrame,
    held_out: HeldOutCalibration,
    accuracy_budget: float,
    budget: SelectionBudget | None = None,
    settings: OutOfScopeSettings | None = None,
    objective: FallbackSettings | None = None,
) -> tuple[FallbackPolicy, OutOfScopeReport]:
    """The fallback policy for the trained model and its out-of-scope report.

    The draws are fitted on the sample of `train` the candidates were compared on (`budget`);
    the accuracy budget is measured on `held_out`, the trained model's calibrated validation
    predictions. `settings`/`objective` unset: TRAIN_OOS_* / TRAIN_FALLBACK_* from the
    environment.
    """
    settings = settings or OutOfScopeSettings()
    objective = objective or FallbackSettings()
    budget = budget or SelectionBudget()
    sample = selection_sample(train, budget.max_examples, budget.seed)
    probabilities, correct = held_out.calibrated, held_out.predictions.correct
    started = time.perf_counter()
    shared = [str(i) for i in set(sample["intent"]) & set(validation["intent"])]
    draws = holdout_draws(shared, settings)
    config = {k: float(v) for k, v in settings.model_dump().items()}
    if not draws:
        skipped = (
            "off (TRAIN_OOS_DRAWS=0)"
            if settings.draws == 0
            else f"{len(shared)} intents: too few to hold any out and keep two"
        )
        rule = choose_policy(objective, 0.0, (probabilities, correct), [], accuracy_budget)
        logger.info("fallback policy: %s", rule.reason)
        return rule.policy, OutOfScopeReport(
            config, rule.reason, objective=objective, skipped=skipped
        )
    fitted = []
    for number, intents in enumerate(draws, start=1):
        logger.info("out-of-scope draw %d/%d: holding out %s", number, len(draws), intents)
        fitted.append(run_draw(candidate, sample, validation, intents))
    choice = choose_policy(
        objective, settings.target_recall, (probabilities, correct), list(fitted), accuracy_budget
    )
    logger.info("fallback policy: %s", choice.reason)
    report = OutOfScopeReport(
        config,
        choice.reason,
        choice.target_met,
        objective,
        [measure_draw(d, choice.policy) for d in fitted],
        threshold_curve(fitted),
        seconds=time.perf_counter() - started,
    )
    logger.info("out-of-scope: %s", {k: round(v, 4) for k, v in report.metrics().items()})
    return choice.policy, report

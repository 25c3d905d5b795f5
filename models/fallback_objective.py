"""The `answered_accuracy` fallback objective and TRAIN_FALLBACK_* settings.

TRAIN_FALLBACK_POLICY chooses how a model version's fallback policy is picked:

- `answered_accuracy` (default): on the out-of-scope draws (models/out_of_scope.py), the policy
  that answers the most in-scope messages while reaching the out-of-scope recall target
  (TRAIN_OOS_TARGET_RECALL) and keeping answered in-scope accuracy at or above a floor
  (TRAIN_FALLBACK_MIN_ANSWERED_ACCURACY). A message sent to the fallback costs an agent's time,
  not accuracy: on Banking77 about 15 % of in-scope messages go to a human (bench/README.md).
- `coverage`: models/fallback.py's accuracy-budget rule (a fallback counts as a miss, at most
  `fallback_accuracy_budget` of accuracy lost), for teams with few agents.

Pure: numpy only.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from typing import Protocol

import numpy as np
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.fallback import (
    MARGINS,
    FallbackPolicy,
    PolicyChoice,
    choose_fallback_policy,
    choose_fallback_with_target,
)


class FallbackObjective(StrEnum):
    """What the fallback policy is chosen for (TRAIN_FALLBACK_POLICY)."""

    ANSWERED_ACCURACY = "answered_accuracy"  # catch out-of-scope, keep answers right
    COVERAGE = "coverage"  # answer as much as the accuracy budget allows


class FallbackSettings(BaseSettings):
    """TRAIN_FALLBACK_POLICY (`answered_accuracy` or `coverage`) and
    TRAIN_FALLBACK_MIN_ANSWERED_ACCURACY (the floor of `answered_accuracy`)."""

    model_config = SettingsConfigDict(env_prefix="TRAIN_FALLBACK_", frozen=True)

    policy: FallbackObjective = FallbackObjective.ANSWERED_ACCURACY
    min_answered_accuracy: float = Field(default=0.95, gt=0, le=1)


class ScoredDraw(Protocol):
    """One out-of-scope draw's calibrated probabilities (models/out_of_scope.DrawProbabilities)."""

    @property
    def in_scope(self) -> np.ndarray: ...  # rows of the intents the draw's model knows
    @property
    def correct(self) -> np.ndarray: ...  # whether each in-scope row's top intent is right
    @property
    def out_of_scope(self) -> np.ndarray: ...  # rows of the intents it never saw


@dataclass(frozen=True)
class _Tops:
    """Top-1 confidence and top-1 − top-2 gap per row, computed once for a whole grid."""

    top1: np.ndarray
    gap: np.ndarray

    @classmethod
    def of(cls, probabilities: np.ndarray) -> _Tops:
        ordered = np.sort(probabilities, axis=1)
        top1 = ordered[:, -1] if len(ordered) else np.zeros(0)
        top2 = ordered[:, -2] if probabilities.shape[1] > 1 else np.zeros_like(top1)
        return cls(top1, top1 - top2)

    def answered(self, threshold: float, margin: float) -> np.ndarray:
        """Rows FallbackPolicy(threshold, margin) answers."""
        return (self.top1 >= threshold) & (self.gap >= margin)


@dataclass(frozen=True)
class _Scored:
    """A policy with the figures the answered-accuracy objective ranks it by."""

    policy: FallbackPolicy
    recall: float  # mean over draws of out-of-scope rows sent to the fallback
    draw_accuracy: float  # mean over draws of answered in-scope accuracy


def choose_by_answered_accuracy(
    probabilities: np.ndarray,
    correct: np.ndarray,
    draws: list[ScoredDraw],
    target_recall: float,
    min_answered_accuracy: float,
    margins: tuple[float, ...] = MARGINS,
) -> PolicyChoice | None:
    """The policy answering the most in-scope messages that reaches `target_recall` on the draws
    with answered accuracy ≥ `min_answered_accuracy`; None when there is nothing to judge by.

    Answered accuracy must hold both on the draws' in-scope rows (mean over draws, as
    `oos_in_scope_answered_accuracy` reports it) and on `probabilities`/`correct`, the trained
    model's own validation predictions, whose answered share ranks the policies. When the target
    is out of reach, the floor-keeping policy with the highest recall is kept and the reason
    says how far it got; when no policy keeps the floor (or there are no draws), None: the
    caller falls back to the coverage rule.
    """
    correct = np.asarray(correct, dtype=bool)
    if len(probabilities) == 0 or not draws:
        return None
    validation = _Tops.of(probabilities)
    scored_draws = [
        (_Tops.of(d.in_scope), np.asarray(d.correct, bool), _Tops.of(d.out_of_scope)) for d in draws
    ]
    grid = np.round(np.linspace(0.0, 1.0, 401), 4)  # steps of 0.0025
    kept: list[_Scored] = []
    for margin in margins:
        for threshold in grid:
            answered = validation.answered(float(threshold), margin)
            if not answered.any() or correct[answered].mean() < min_answered_accuracy:
                continue
            accuracy, recall = _draw_figures(scored_draws, float(threshold), margin)
            if accuracy < min_answered_accuracy:
                continue
            policy = FallbackPolicy(
                float(threshold), margin, float(answered.mean()), float(correct[answered].mean())
            )
            kept.append(_Scored(policy, recall, accuracy))
    if not kept:
        return None
    reaching = [s for s in kept if s.recall >= target_recall]
    if reaching:
        # Most in-scope messages answered; then the more precise, then the lower threshold.
        best = max(
            reaching,
            key=lambda s: (
                _coverage(s),
                s.policy.validation_answered_accuracy,
                -s.policy.threshold,
            ),
        )
        return PolicyChoice(best.policy, _reason(best, target_recall, min_answered_accuracy), True)
    best = max(kept, key=lambda s: (s.recall, _coverage(s)))
    return PolicyChoice(best.policy, _reason(best, target_recall, min_answered_accuracy), False)


def _draw_figures(
    draws: list[tuple[_Tops, np.ndarray, _Tops]], threshold: float, margin: float
) -> tuple[float, float]:
    """Mean answered in-scope accuracy (0 when a draw answers nothing) and mean recall."""
    accuracy, recall = [], []
    for in_scope, right, outside in draws:
        answered = in_scope.answered(threshold, margin)
        accuracy.append(float(right[answered].mean()) if answered.any() else 0.0)
        recall.append(
            float((~outside.answered(threshold, margin)).mean()) if len(outside.top1) else 0.0
        )
    return float(np.mean(accuracy)), float(np.mean(recall))


def _coverage(scored: _Scored) -> float:
    return round(scored.policy.validation_coverage, 6)


def _reason(scored: _Scored, target_recall: float, floor: float) -> str:
    policy = scored.policy
    figures = (
        f"out-of-scope recall {scored.recall:.3f}, answered in-scope accuracy "
        f"{scored.draw_accuracy:.3f} on the draws; {policy.validation_coverage:.1%} of validation "
        f"messages answered at accuracy {policy.validation_answered_accuracy:.3f} (threshold "
        f"{policy.threshold:.4f}, margin {policy.margin})"
    )
    if scored.recall >= target_recall:
        return (
            f"answered_accuracy: most answers reaching out-of-scope recall {target_recall:.2f} "
            f"with answered accuracy >= {floor:.2f}: {figures}"
        )
    return (
        f"answered_accuracy: out-of-scope recall target {target_recall:.2f} not reachable with "
        f"answered accuracy >= {floor:.2f}; highest recall kept: {figures}"
    )


def choose_policy(
    objective: FallbackSettings,
    target_recall: float,
    validation: tuple[np.ndarray, np.ndarray],
    draws: list[ScoredDraw],
    accuracy_budget: float,
) -> PolicyChoice:
    """The fallback policy by TRAIN_FALLBACK_POLICY.

    `validation` is the trained model's calibrated validation probabilities and whether each
    top intent is right; `draws` the out-of-scope draws (models/out_of_scope.py). With no draws
    there is no recall to aim at: both objectives use the accuracy-budget rule.
    """
    probabilities, correct = validation
    rule = choose_fallback_policy(probabilities, correct, accuracy_budget)
    name = objective.policy.value
    if not draws:
        return PolicyChoice(rule, f"{name}: no out-of-scope draws, accuracy-budget rule")
    if objective.policy is FallbackObjective.ANSWERED_ACCURACY:
        floor = objective.min_answered_accuracy
        found = choose_by_answered_accuracy(probabilities, correct, draws, target_recall, floor)
        if found is not None:
            return found
        return PolicyChoice(
            rule,
            f"{name}: no threshold keeps answered accuracy >= {floor:.2f} on validation and "
            "the draws: accuracy-budget rule",
        )
    if target_recall > 0:
        outside = [draw.out_of_scope for draw in draws]
        choice = choose_fallback_with_target(
            probabilities, correct, outside, target_recall, accuracy_budget
        )
        return PolicyChoice(choice.policy, f"{name}: {choice.reason}", choice.target_met)
    return PolicyChoice(rule, f"{name}: accuracy-budget rule (no TRAIN_OOS_TARGET_RECALL)")

"""Calibrating the "not sure" answer per model version, like Rasa's FallbackClassifier.

Rasa asks for a hand-set `threshold` and `ambiguity_threshold`; here both are chosen per model
version, by one of two objectives (TRAIN_FALLBACK_POLICY, models/fallback_objective.py). This
module holds the policy and the `coverage` objective: on the validation split, the pair that
makes the answered predictions most precise while losing at most `accuracy_budget` of overall
accuracy (a fallback counts as a miss), optionally aiming at an out-of-scope recall target
within that budget.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

FALLBACK_INTENT = "nlu_fallback"
MARGINS = (0.0, 0.02, 0.05, 0.1)  # ambiguity margins every objective tries


@dataclass(frozen=True)
class FallbackPolicy:
    """Answer `nlu_fallback` when confidence < threshold or top1 - top2 < margin."""

    threshold: float
    margin: float
    validation_coverage: float = 1.0
    validation_answered_accuracy: float = 0.0

    def is_fallback(self, probabilities: np.ndarray) -> np.ndarray:
        """Boolean per row of a probability matrix."""
        ordered = np.sort(probabilities, axis=1)
        top1 = ordered[:, -1]
        top2 = ordered[:, -2] if probabilities.shape[1] > 1 else np.zeros_like(top1)
        return (top1 < self.threshold) | ((top1 - top2) < self.margin)

    def to_dict(self) -> dict[str, float]:
        """Plain dict for tags and JSON."""
        return asdict(self)


def choose_fallback_policy(
    probabilities: np.ndarray,
    correct: np.ndarray,
    accuracy_budget: float = 0.02,
    margins: tuple[float, ...] = MARGINS,
) -> FallbackPolicy:
    """The (threshold, margin) with the most precise answers within the accuracy budget."""
    if len(probabilities) == 0:
        return FallbackPolicy(threshold=0.0, margin=0.0)
    correct = np.asarray(correct, dtype=bool)
    base_accuracy = correct.mean()
    # Rounded down: a threshold taken at a quantile must keep the row it was taken from (rounding
    # up made the lowest candidate drop a row, which a small validation split cannot afford).
    quantiles = np.quantile(probabilities.max(axis=1), np.linspace(0, 0.5, 51))
    thresholds = np.unique(np.floor(quantiles * 10_000) / 10_000)
    best = FallbackPolicy(0.0, 0.0, 1.0, float(base_accuracy))
    for margin in margins:
        for threshold in thresholds:
            policy = FallbackPolicy(float(threshold), margin)
            answered = ~policy.is_fallback(probabilities)
            if (correct & answered).mean() < base_accuracy - accuracy_budget or not answered.any():
                continue
            candidate = FallbackPolicy(
                float(threshold), margin, float(answered.mean()), float(correct[answered].mean())
            )
            # Most precise first; at equal precision keep more answers, then be more cautious
            # (a higher threshold that costs nothing on validation).
            if _rank(candidate) > _rank(best):
                best = candidate
    return best


def _rank(policy: FallbackPolicy) -> tuple[float, float, float, float]:
    return (
        round(policy.validation_answered_accuracy, 6),
        round(policy.validation_coverage, 6),
        policy.threshold,
        policy.margin,
    )


@dataclass(frozen=True)
class PolicyChoice:
    """The policy chosen, and why: by an out-of-scope recall target, or by the rule above."""

    policy: FallbackPolicy
    reason: str
    target_met: bool = False


def choose_fallback_with_target(
    probabilities: np.ndarray,
    correct: np.ndarray,
    out_of_scope: list[np.ndarray],
    target_recall: float,
    accuracy_budget: float = 0.02,
    margins: tuple[float, ...] = MARGINS,
) -> PolicyChoice:
    """The lowest fallback that reaches `target_recall` on out-of-scope rows within the budget.

    `probabilities`/`correct` are the in-scope validation predictions the budget is measured on
    (as in `choose_fallback_policy`); `out_of_scope` holds, per draw, the probabilities a model
    gave to intents it never saw (models/out_of_scope.py); recall is their mean over draws. Of
    the policies that reach the target and keep the accuracy budget, the one answering the
    most in-scope rows right wins (for one margin: the lowest threshold). When none does, the
    rule of `choose_fallback_policy` decides, and the reason says how close the target came.
    """
    correct = np.asarray(correct, dtype=bool)
    default = choose_fallback_policy(probabilities, correct, accuracy_budget, margins)
    if len(probabilities) == 0 or not out_of_scope:
        return PolicyChoice(default, "no validation or out-of-scope rows: accuracy-budget rule")
    floor = correct.mean() - accuracy_budget
    grid = np.unique(np.round(np.concatenate([np.linspace(0, 1, 201), [default.threshold]]), 4))
    best: tuple[float, float, FallbackPolicy] | None = None
    reachable = (0.0, 0.0)  # the highest recall within the budget, and its threshold
    for margin in margins:
        for threshold in grid:
            policy = FallbackPolicy(float(threshold), margin)
            answered = ~policy.is_fallback(probabilities)
            right = float((correct & answered).mean())
            if right < floor or not answered.any():
                continue
            recall = float(np.mean([policy.is_fallback(rows).mean() for rows in out_of_scope]))
            reachable = max(reachable, (recall, float(threshold)))
            if recall >= target_recall and (best is None or (right, -threshold) > best[:2]):
                chosen = FallbackPolicy(
                    float(threshold),
                    margin,
                    float(answered.mean()),
                    float(correct[answered].mean()),
                )
                best = (right, -float(threshold), chosen)
    if best is None:
        return PolicyChoice(
            default,
            f"out-of-scope recall target {target_recall:.2f} not reachable within the "
            f"{accuracy_budget:.3f} accuracy budget (at most {reachable[0]:.3f}, threshold "
            f"{reachable[1]:.3f}): accuracy-budget rule",
        )
    return PolicyChoice(
        best[2],
        f"lowest fallback reaching out-of-scope recall {target_recall:.2f} within the "
        f"{accuracy_budget:.3f} accuracy budget",
        target_met=True,
    )

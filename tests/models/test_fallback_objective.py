"""TRAIN_FALLBACK_POLICY: which threshold each objective picks, on constructed probabilities."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest

from models.fallback import FallbackPolicy, choose_fallback_policy, choose_fallback_with_target
from models.fallback_objective import (
    FallbackObjective,
    FallbackSettings,
    choose_by_answered_accuracy,
    choose_policy,
)
from models.out_of_scope import OutOfScopeSettings
from models.settings_errors import SettingsProblem, load_settings

ANSWERED = FallbackSettings(policy=FallbackObjective.ANSWERED_ACCURACY, min_answered_accuracy=0.95)
COVERAGE = FallbackSettings(policy=FallbackObjective.COVERAGE)


@dataclass(frozen=True)
class Draw:
    """A draw's probabilities as models/out_of_scope.DrawProbabilities holds them."""

    in_scope: np.ndarray
    correct: np.ndarray
    out_of_scope: np.ndarray


def _two_class(confidences: list[float]) -> np.ndarray:
    top = np.asarray(confidences)
    return np.column_stack([top, 1 - top])


def _known() -> tuple[np.ndarray, np.ndarray, list[Draw]]:
    """80 sure right answers (0.99), 10 right at 0.7, 10 wrong at 0.6; out of scope: half at
    0.65, half at 0.8. So a threshold above 0.6 answers 90 % all right, above 0.65 catches half
    the out-of-scope rows, above 0.7 answers 80 %, above 0.8 catches them all."""
    confidences = [0.99] * 80 + [0.7] * 10 + [0.6] * 10
    probabilities = _two_class(confidences)
    correct = np.array([True] * 90 + [False] * 10)
    draw = Draw(probabilities, correct, _two_class([0.65] * 5 + [0.8] * 5))
    return probabilities, correct, [draw, draw]


@pytest.mark.parametrize(
    ("target", "threshold", "coverage", "met"),
    [
        (0.5, 0.6525, 0.9, True),  # the lowest grid step above 0.65: 90 % still answered
        (0.9, 0.8025, 0.8, True),  # every out-of-scope row caught costs the 0.7 answers
        (0.0, 0.6025, 0.9, True),  # no recall wanted: the floor alone drops the 0.6 errors
    ],
)
def test_answered_accuracy_takes_the_most_answers_that_reach_the_target(
    target, threshold, coverage, met
):
    probabilities, correct, draws = _known()
    choice = choose_by_answered_accuracy(probabilities, correct, draws, target, 0.95)
    assert choice is not None and choice.target_met is met
    assert choice.policy.threshold == pytest.approx(threshold)
    assert choice.policy.validation_coverage == pytest.approx(coverage)
    assert choice.policy.validation_answered_accuracy == 1.0
    assert choice.reason.startswith("answered_accuracy: most answers reaching out-of-scope")


def test_an_unreachable_recall_keeps_the_highest_recall_within_the_floor_and_says_so():
    probabilities, correct, draws = _known()
    # The out-of-scope rows at 0.99 can only be caught with the right answers at 0.99: nothing
    # answered then, which no policy is allowed.
    sure = [Draw(d.in_scope, d.correct, _two_class([0.99] * 5 + [0.8] * 5)) for d in draws]
    choice = choose_by_answered_accuracy(probabilities, correct, sure, 0.8, 0.95)
    assert choice is not None and not choice.target_met
    assert choice.policy.threshold == pytest.approx(0.8025)  # recall 0.5, most answers at that
    assert "recall target 0.80 not reachable with answered accuracy >= 0.95" in choice.reason
    assert "out-of-scope recall 0.500" in choice.reason


def test_random_draws_the_choice_is_the_best_policy_of_the_grid_by_brute_force():
    rng = np.random.default_rng(3)
    confidence = rng.uniform(0.4, 1.0, 400)
    probabilities = _two_class(list(confidence))
    correct = rng.uniform(size=400) < confidence
    draws = [
        Draw(probabilities, correct, _two_class(list(rng.uniform(0.3, 0.9, 100)))) for _ in range(3)
    ]
    choice = choose_by_answered_accuracy(probabilities, correct, draws, 0.8, 0.95)
    assert choice is not None and choice.target_met
    best = 0.0
    for margin in (0.0, 0.02, 0.05, 0.1):
        for threshold in np.round(np.linspace(0, 1, 401), 4):
            policy = FallbackPolicy(float(threshold), margin)
            answered = ~policy.is_fallback(probabilities)
            if not answered.any() or correct[answered].mean() < 0.95:
                continue
            recall = np.mean([policy.is_fallback(d.out_of_scope).mean() for d in draws])
            if recall >= 0.8:
                best = max(best, answered.mean())
    assert choice.policy.validation_coverage == pytest.approx(best)
    chosen = choice.policy
    assert np.mean([chosen.is_fallback(d.out_of_scope).mean() for d in draws]) >= 0.8
    assert correct[~chosen.is_fallback(probabilities)].mean() >= 0.95


def test_no_threshold_keeping_the_floor_falls_back_to_the_accuracy_budget_rule():
    probabilities, _, draws = _known()
    wrong = np.zeros(100, dtype=bool)
    assert choose_by_answered_accuracy(probabilities, wrong, draws, 0.8, 0.95) is None
    choice = choose_policy(ANSWERED, 0.8, (probabilities, wrong), draws, 0.02)
    assert choice.policy == choose_fallback_policy(probabilities, wrong, 0.02)
    assert choice.reason == (
        "answered_accuracy: no threshold keeps answered accuracy >= 0.95 on validation and the "
        "draws: accuracy-budget rule"
    )


@pytest.mark.parametrize("objective", [ANSWERED, COVERAGE])
def test_without_draws_both_objectives_use_the_accuracy_budget_rule(objective):
    probabilities, correct, _ = _known()
    choice = choose_policy(objective, 0.8, (probabilities, correct), [], 0.02)
    assert choice.policy == choose_fallback_policy(probabilities, correct, 0.02)
    assert not choice.target_met
    assert choice.reason == f"{objective.policy.value}: no out-of-scope draws, accuracy-budget rule"


def test_coverage_aims_at_the_recall_only_within_the_accuracy_budget():
    probabilities, correct, draws = _known()
    choice = choose_policy(COVERAGE, 0.9, (probabilities, correct), draws, 0.02)
    within = choose_fallback_with_target(
        probabilities, correct, [d.out_of_scope for d in draws], 0.9, 0.02
    )
    # Catching every out-of-scope row costs 10 right answers: more than 2 points.
    assert choice.policy == within.policy and not choice.target_met
    assert choice.reason == f"coverage: {within.reason}"
    answered = choose_policy(ANSWERED, 0.9, (probabilities, correct), draws, 0.02)
    assert answered.target_met and answered.policy.threshold > choice.policy.threshold


def test_the_default_is_answered_accuracy_at_recall_080_and_a_095_floor(monkeypatch):
    for name in ("TRAIN_FALLBACK_POLICY", "TRAIN_FALLBACK_MIN_ANSWERED_ACCURACY"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.delenv("TRAIN_OOS_TARGET_RECALL", raising=False)
    assert load_settings(FallbackSettings) == ANSWERED
    assert OutOfScopeSettings().target_recall == 0.8
    monkeypatch.setenv("TRAIN_FALLBACK_POLICY", "coverage")
    assert load_settings(FallbackSettings).policy is FallbackObjective.COVERAGE
    monkeypatch.setenv("TRAIN_FALLBACK_MIN_ANSWERED_ACCURACY", "0")
    with pytest.raises(SettingsProblem, match=r"^bad setting TRAIN_FALLBACK_MIN_ANSWERED_ACCURACY"):
        load_settings(FallbackSettings)

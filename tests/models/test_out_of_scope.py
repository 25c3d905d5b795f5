"""Out-of-scope evaluation by held-out intents, and a fallback policy aiming at a recall target."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from models.candidates import SEARCH_SPACE
from models.fallback import FallbackPolicy, choose_fallback_policy, choose_fallback_with_target
from models.out_of_scope import (
    OutOfScopeSettings,
    holdout_draws,
    measure_draw,
    run_draw,
)
from tests.models.test_tracking import _examples, _train_and_log, registry  # noqa: F401


def _splits(examples: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    return examples[examples["split"] == "train"], examples[examples["split"] == "validation"]


def test_same_seed_same_draws_and_each_draw_holds_a_tenth_of_the_intents():
    intents = [f"intent_{n:02d}" for n in range(30)]
    settings = OutOfScopeSettings(draws=4, holdout_fraction=0.1, seed=7)
    draws = holdout_draws(intents, settings)
    assert draws == holdout_draws(list(reversed(intents)), settings)
    assert draws != holdout_draws(intents, OutOfScopeSettings(draws=4, seed=8))
    assert len(draws) == 4 and all(len(set(d)) == 3 and set(d) <= set(intents) for d in draws)
    assert len({tuple(d) for d in draws}) > 1  # the draws differ from each other
    # At least one intent, and never so many that fewer than two are left to train on.
    assert [len(d) for d in holdout_draws(intents[:4], settings)] == [1] * 4
    assert holdout_draws(intents[:2], settings) == []
    assert holdout_draws(intents, OutOfScopeSettings(draws=0)) == []


def test_held_out_intents_are_never_classes_of_the_draws_model(small_slice):
    train, validation = _splits(_examples(small_slice))
    settings = OutOfScopeSettings(draws=2, holdout_fraction=0.34, seed=1)
    for held_out in holdout_draws(sorted(set(train["intent"])), settings):
        draw = run_draw(SEARCH_SPACE["tfidf_logreg"], train, validation, held_out)
        assert len(held_out) == 2 and not set(held_out) & set(draw.classes)
        assert set(draw.classes) == set(train["intent"]) - set(held_out)
        assert len(draw.out_of_scope) == validation["intent"].isin(held_out).sum() > 0
        assert draw.in_scope.shape == (len(validation) - len(draw.out_of_scope), 4)


def test_recall_is_a_share_and_grows_with_the_threshold(small_slice):
    train, validation = _splits(_examples(small_slice))
    draw = run_draw(SEARCH_SPACE["tfidf_logreg"], train, validation, ["activate_my_card"])
    recalls = [
        measure_draw(draw, FallbackPolicy(threshold, 0.0)).recall
        for threshold in (0.0, 0.3, 0.5, 0.7, 0.9, 1.01)
    ]
    assert all(0.0 <= recall <= 1.0 for recall in recalls)
    assert recalls == sorted(recalls) and recalls[0] == 0.0 and recalls[-1] == 1.0
    assert recalls[2] < recalls[-1]


def _validation(rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
    """In-scope rows confident and mostly right; out-of-scope rows less confident."""
    confidence = rng.uniform(0.6, 1.0, 1000)
    correct = rng.uniform(size=1000) < confidence
    unseen = [rng.uniform(0.3, 0.7, 300) for _ in range(3)]
    as_matrix = [np.column_stack([c, 1 - c]) for c in (confidence, *unseen)]
    return as_matrix[0], correct, as_matrix[1:]


def test_a_reachable_target_is_met_by_the_lowest_threshold_within_the_budget():
    probabilities, correct, unseen = _validation(np.random.default_rng(0))
    choice = choose_fallback_with_target(probabilities, correct, unseen, 0.3, 0.05)
    policy = choice.policy
    answered = ~policy.is_fallback(probabilities)
    assert choice.target_met and "reaching out-of-scope recall 0.30" in choice.reason
    assert np.mean([policy.is_fallback(rows).mean() for rows in unseen]) >= 0.3
    assert (correct & answered).mean() >= correct.mean() - 0.05
    # The lowest threshold that does: a step lower misses the target.
    lower = FallbackPolicy(policy.threshold - 0.005, policy.margin)
    assert np.mean([lower.is_fallback(rows).mean() for rows in unseen]) < 0.3
    # Lower than the accuracy-budget rule's, which falls back as much as the budget allows.
    assert policy.threshold < choose_fallback_policy(probabilities, correct, 0.05).threshold


def test_an_unreachable_target_falls_back_to_the_budget_rule_and_says_why():
    probabilities, correct, unseen = _validation(np.random.default_rng(0))
    choice = choose_fallback_with_target(probabilities, correct, unseen, 0.99, 0.02)
    assert not choice.target_met
    assert choice.policy == choose_fallback_policy(probabilities, correct, 0.02)
    assert choice.reason.startswith("out-of-scope recall target 0.99 not reachable within the")
    assert "accuracy-budget rule" in choice.reason


def test_a_training_run_logs_out_of_scope_metrics_draws_and_curve(
    registry,  # noqa: F811
    small_slice,
    tmp_path,
    monkeypatch,
):
    monkeypatch.setenv("TRAIN_OOS_DRAWS", "3")
    monkeypatch.setenv("TRAIN_OOS_HOLDOUT_FRACTION", "0.34")
    run = _train_and_log(_examples(small_slice), registry, tmp_path / "artifacts", ["tfidf_logreg"])
    metrics, params = run.data.metrics, run.data.params
    assert 0.0 <= metrics["oos_recall_min"] <= metrics["oos_recall"] <= 1.0
    assert 0.0 < metrics["oos_in_scope_answered_accuracy"] <= 1.0
    assert params["oos_draws"] == "3.0" and params["oos_target_recall"] == "0.8"
    # The default objective, TRAIN_FALLBACK_POLICY=answered_accuracy, and its figures.
    assert params["fallback_policy"] == "answered_accuracy"
    assert params["fallback_min_answered_accuracy"] == "0.95"
    reason = params["fallback_policy_reason"]
    assert reason.startswith("answered_accuracy: ") and "out-of-scope recall" in reason
    assert params["fallback_target_met"] == str(metrics["oos_recall"] >= 0.8)
    version = registry.client.get_model_version(registry.name, "1")
    policy = json.loads(version.tags["fallback_policy"])
    assert metrics["fallback_threshold"] == policy["threshold"]
    assert metrics["fallback_validation_coverage"] == policy["validation_coverage"] > 0
    assert policy["validation_answered_accuracy"] >= 0.95
    assert f"threshold {policy['threshold']:.4f}" in reason
    folder = registry.client.download_artifacts(run.info.run_id, "out_of_scope", str(tmp_path))
    draws = json.loads((tmp_path / "out_of_scope" / "draws.json").read_text())["draws"]
    assert [len(d["held_out"]) for d in draws] == [2, 2, 2], folder
    curve = json.loads((tmp_path / "out_of_scope" / "curve.json").read_text())
    assert "recall_mean" in curve["columns"] and len(curve["data"]) == 8


def test_draws_zero_is_off_and_logs_no_recall(registry, small_slice, tmp_path, monkeypatch):  # noqa: F811
    monkeypatch.setenv("TRAIN_OOS_DRAWS", "0")
    run = _train_and_log(_examples(small_slice), registry, tmp_path / "artifacts", ["tfidf_logreg"])
    assert "oos_recall" not in run.data.metrics
    # No draws: no recall to aim at, so the default objective uses the accuracy-budget rule.
    assert run.data.params["fallback_policy"] == "answered_accuracy"
    assert run.data.params["fallback_policy_reason"] == (
        "answered_accuracy: no out-of-scope draws, accuracy-budget rule; "
        "out-of-scope evaluation off (TRAIN_OOS_DRAWS=0)"
    )

"""The candidate search under a budget: a sample of large data, skips with reasons, a refit on
train + validation."""

from __future__ import annotations

import pandas as pd
import pytest

from models.candidate_choice import fit_and_select, search_then_refit
from models.candidates import Candidate, resolve
from models.selection import BudgetClock, FitCost, SelectionBudget, selection_sample

INTENTS = ("card_arrival", "refund", "transfer")


def _examples(rows: int) -> pd.DataFrame:
    """`rows` examples over three intents; each text has a word no other text has."""
    intents = [INTENTS[i % 3] for i in range(rows)]
    texts = [f"{intent.replace('_', ' ')} please help word{i}" for i, intent in enumerate(intents)]
    return pd.DataFrame({"text": texts, "context": ["{}"] * rows, "intent": intents})


def test_small_data_is_searched_whole_and_large_data_on_a_sample_of_every_intent():
    train = _examples(90)
    assert selection_sample(train, 100, seed=0) is train
    sample = selection_sample(train, 30, seed=0)
    assert len(sample) == 30
    assert set(sample["intent"]) == set(INTENTS)
    assert sample.equals(selection_sample(train, 30, seed=0))  # seeded


def test_estimates_grow_with_examples_and_intents():
    cost = FitCost(seconds_per_1k=2.0, exponent=1.5)
    assert cost.estimate(4000, 77) == pytest.approx(16.0)
    assert cost.estimate(8000, 77) > 2 * cost.estimate(4000, 77)
    assert cost.estimate(4000, 154) == pytest.approx(32.0)


def test_the_clock_scales_estimates_by_how_fast_fits_really_ran():
    clock = BudgetClock(100.0)
    cost = FitCost(seconds_per_1k=10.0)
    assert clock.skip_reason("a", cost, 5000, 77) is None  # 50 s of 100
    clock.record(cost, 1000, 77, seconds=30.0)  # three times slower than estimated
    reason = clock.skip_reason("b", cost, 2000, 77)  # 20 s × 3 = 60 s > 70 s left? no
    assert reason is None
    reason = clock.skip_reason("c", cost, 3000, 77)  # 30 s × 3 = 90 s > 70 s left
    assert reason is not None and "c:" in reason and "70 s left" in reason


def _priced(name: str, seconds_per_1k: float) -> Candidate:
    declared = resolve([name])[0]
    return Candidate(
        declared.name, declared.description, declared.params, declared.build,
        FitCost(seconds_per_1k=seconds_per_1k),
    )  # fmt: skip


def test_a_candidate_that_would_overrun_the_budget_is_skipped_with_its_reason():
    train, validation = _examples(60), _examples(30)
    cheap = _priced("tfidf_logreg", 1.0)  # ~0.002 s estimated
    dear = _priced("design_random_forest", 1e6)  # 60 examples of 3 intents: ~2,300 s
    chosen, _, selection = fit_and_select([dear, cheap], train, validation, budget_seconds=60)
    assert chosen.name == "tfidf_logreg"
    assert [r.name for r in selection.candidates] == ["tfidf_logreg"]
    assert [s.name for s in selection.skipped] == ["design_random_forest"]
    assert "selection budget" in selection.skipped[0].reason


def test_the_cheapest_candidate_is_fitted_even_when_all_would_overrun():
    train, validation = _examples(60), _examples(30)
    candidates = [_priced("design_random_forest", 1e6), _priced("tfidf_logreg", 5e5)]
    chosen, _, selection = fit_and_select(candidates, train, validation, budget_seconds=1)
    assert chosen.name == "tfidf_logreg"
    assert [s.name for s in selection.skipped] == ["design_random_forest"]


def _vocabulary(pipeline) -> dict[str, int]:
    return pipeline.named_steps["features"].named_transformers_["word"].vocabulary_


def test_the_winner_of_a_sampled_search_is_refitted_once_on_every_train_and_validation_example():
    train = _examples(150)
    validation = _examples(180).iloc[150:]  # words word150..word179: in no training text
    budget = SelectionBudget(max_examples=45, seconds=600)
    found = search_then_refit(resolve(["tfidf_logreg"]), train, validation, budget)
    assert found.selection.examples == 45 and found.selection.refit_seconds is not None
    assert found.fitted_on == "train+validation" and found.fitted_examples == 180
    # The refit saw every row, outside the sample and in validation too...
    assert all(f"word{i}" in _vocabulary(found.refit) for i in range(180))
    # ...while the model whose validation predictions calibrate it saw neither.
    held_out = _vocabulary(found.held_out)
    assert sum(f"word{i}" in held_out for i in range(150)) == 45
    assert not any(f"word{i}" in held_out for i in range(150, 180))


def test_budget_limits_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("TRAIN_SELECTION_MAX_EXAMPLES", "5000")
    monkeypatch.setenv("TRAIN_SELECTION_SECONDS", "90")
    assert SelectionBudget() == SelectionBudget(max_examples=5000, seconds=90.0)

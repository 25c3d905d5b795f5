"""The benchmark's scores from gold labels and served answers: known answers, known figures."""

from __future__ import annotations

import math

import pytest

from models.benchmark import (
    ANCHORS,
    ServedAnswer,
    latency,
    render_table,
    score_answers,
    top_k_accuracy,
)


def answer(intent: str, *others: str, fallback: bool = False, confidence: float = 0.9):
    """An API answer whose best candidate is `intent` (given as `nlu_fallback` on a fallback)."""
    given = "nlu_fallback" if fallback else intent
    return ServedAnswer(given, fallback, (intent, *others), confidence)


def test_a_fallback_is_a_miss_for_accuracy_and_left_out_of_answered_accuracy() -> None:
    gold = ["a", "b", "c", "d"]
    answers = [
        answer("a"),  # right
        answer("c"),  # wrong
        answer("c", fallback=True),  # right candidate, but the customer got no intent
        answer("a", fallback=True),  # wrong and fell back
    ]
    scores = score_answers(gold, answers)
    assert scores.n_scored == 4
    assert scores.accuracy == pytest.approx(1 / 4)
    assert scores.fallback_rate == pytest.approx(2 / 4)
    assert scores.answered_accuracy == pytest.approx(1 / 2)  # 1 right of the 2 answered
    assert scores.top1_accuracy == pytest.approx(2 / 4)  # candidates, fallback ignored


def test_macro_f1_averages_the_gold_intents_and_counts_a_fallback_as_a_missed_one() -> None:
    gold = ["a", "a", "b", "b"]
    answers = [answer("a"), answer("a"), answer("b"), answer("b", fallback=True)]
    scores = score_answers(gold, answers)
    # a: precision 1, recall 1 → F1 1; b: precision 1, recall 1/2 → F1 2/3. No `nlu_fallback`
    # class of its own (that would average in a zero F1).
    assert scores.macro_f1 == pytest.approx((1 + 2 / 3) / 2)


def test_top_5_counts_the_gold_intent_among_the_first_five_candidates_only() -> None:
    gold = ["a", "b", "c"]
    answers = [
        answer("x", "y", "z", "w", "a"),  # fifth: a hit
        answer("x", "y", "z", "w", "v", "b"),  # sixth: a miss
        answer("x", "c", fallback=True),  # second, fell back: still a hit
    ]
    assert top_k_accuracy(gold, answers, 5) == pytest.approx(2 / 3)
    assert top_k_accuracy(gold, answers, 1) == 0.0
    assert score_answers(gold, answers).top5_accuracy == pytest.approx(2 / 3)


def test_ece_is_the_gap_between_confidence_and_accuracy_of_the_best_candidate() -> None:
    gold = ["a", "a", "a", "a"]
    # All at 0.9 confidence, half right: one bin, |0.5 - 0.9| = 0.4.
    answers = [answer("a"), answer("a"), answer("b"), answer("b", fallback=True)]
    assert score_answers(gold, answers).ece == pytest.approx(0.4)
    right = [answer("a", confidence=1.0)] * 4
    assert score_answers(gold, right).ece == pytest.approx(0.0)


def test_nothing_answered_has_no_answered_accuracy_and_logs_no_such_metric() -> None:
    scores = score_answers(["a"], [answer("a", fallback=True)])
    assert math.isnan(scores.answered_accuracy)
    assert "answered_accuracy" not in scores.to_metrics()
    assert scores.to_metrics()["n_scored"] == 1.0


def test_answers_are_read_from_the_api_document() -> None:
    document = {
        "intent": "nlu_fallback",
        "confidence": 0.41,
        "fallback": True,
        "top_k": [
            {"intent": "card_arrival", "confidence": 0.41},
            {"intent": "pin", "confidence": 0.3},
        ],
        "sentiment": {"polarity": 0.0, "subjectivity": 0.0},
    }
    assert ServedAnswer.from_document(document) == ServedAnswer(
        "nlu_fallback", True, ("card_arrival", "pin"), 0.41
    )


def test_mismatched_lengths_and_empty_input_are_refused() -> None:
    with pytest.raises(ValueError, match="2 gold labels but 1 answers"):
        score_answers(["a", "b"], [answer("a")])
    with pytest.raises(ValueError, match="no answers"):
        score_answers([], [])
    with pytest.raises(ValueError, match="no request"):
        latency([])


def test_latency_percentiles_are_in_milliseconds() -> None:
    timing = latency([0.001] * 99 + [0.5])
    assert timing.calls == 100
    assert timing.p50_ms == pytest.approx(1.0)
    assert 1.0 < timing.p99_ms <= 500.0


def test_the_table_marks_every_reference_figure_as_not_measured() -> None:
    scores = score_answers(["a", "b"], [answer("a"), answer("a")])
    table = render_table("intent-classifier v1", scores, latency([0.002, 0.004]))
    assert "this run: intent-classifier v1, 2 test texts scored" in table
    assert "NOT measured by this run" in table
    rows = [line for line in table.splitlines() if line.startswith("[ref")]
    for anchor in ANCHORS:
        (row,) = [line for line in rows if anchor.system in line]
        assert f"{anchor.accuracy:.3f}" in row
        assert anchor.source in table
    assert "0.5000" in table  # this run's accuracy

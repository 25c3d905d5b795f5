"""Drift in the gate, the pure part: Evidently conditions on two models' answers to the same texts.

Real Evidently reports on hand-made answers, and the I/O side's failures (a real SQLite store
that cannot be opened, settings from the environment); the Dagster gate around it is tested in
tests/pipelines/test_gate_drift.py.
"""

from __future__ import annotations

import pytest

from models.registry import IntentRegistry, RegistryConfig
from models.settings_errors import SettingsProblem, load_settings
from monitoring.gate_drift import (
    DRIFT_CHECK,
    FALLBACK_CHECK,
    Answers,
    RecentDriftRules,
    judge_recent_answers,
    window_problem,
)
from monitoring.gate_drift_run import GateDriftSettings, recent_drift_checks

INTENTS = [f"intent_{k}" for k in range(6)]
RULES = RecentDriftRules(min_messages=50)


def _answers(version: str, intents: list[str], fallbacks: int) -> Answers:
    return Answers(version, tuple(intents), tuple(i < fallbacks for i in range(len(intents))))


def _by_name(checks):
    return {check.name: check for check in checks}


def test_a_challenger_falling_back_far_more_fails_with_both_rates_in_words():
    mix = [INTENTS[i % 6] for i in range(120)]
    checks = _by_name(
        judge_recent_answers(_answers("1", mix, 12), _answers("2", mix, 60), RULES, "last 168 h")
    )

    fallback = checks[FALLBACK_CHECK]
    assert fallback.passed is False
    assert "'not sure' to 60 of 120 (50.0%)" in fallback.reason
    assert "champion v1 to 12 of 120 (10.0%)" in fallback.reason
    assert "the champion's rate + 0.05 = 15.0%" in fallback.reason
    assert checks[DRIFT_CHECK].passed is True  # same intents picked: no drift
    assert "Jensen-Shannon 0.000 < 0.20" in checks[DRIFT_CHECK].reason


def test_within_the_tolerance_passes_and_an_absolute_cap_is_a_second_bound():
    mix = [INTENTS[i % 6] for i in range(100)]
    champion, challenger = _answers("1", mix, 40), _answers("2", mix, 44)

    relative = _by_name(judge_recent_answers(champion, challenger, RULES, "w"))
    capped = _by_name(
        judge_recent_answers(
            champion, challenger, RecentDriftRules(min_messages=50, max_fallback_rate=0.3), "w"
        )
    )

    assert relative[FALLBACK_CHECK].passed is True
    assert capped[FALLBACK_CHECK].passed is False
    assert "and the cap 30.0%" in capped[FALLBACK_CHECK].reason


def test_a_challenger_picking_other_intents_fails_prediction_drift_naming_them():
    champion = _answers("1", [INTENTS[i % 6] for i in range(120)], 0)
    # Everything the champion calls intent_0 or intent_1, the challenger calls intent_2.
    shifted = [INTENTS[2] if name in INTENTS[:2] else name for name in champion.top_intents]
    checks = _by_name(judge_recent_answers(champion, _answers("2", shifted, 0), RULES, "w"))

    drift = checks[DRIFT_CHECK]
    assert drift.passed is False
    assert "≥ 0.20" in drift.reason
    assert "intent_2 60 times (champion 20)" in drift.reason
    assert checks[FALLBACK_CHECK].passed is True


def test_messages_the_champion_was_unsure_of_are_left_out_of_prediction_drift():
    # 48 of 120 messages ask about an intent the champion never learnt: it falls back on them
    # (ranking intent_0 first); the challenger, retrained on agents' labels, answers lost_phone.
    mix = [INTENTS[i % 6] for i in range(72)]
    champion = _answers("1", ["intent_0"] * 48 + mix, 48)
    challenger = Answers("2", tuple(["lost_phone"] * 48 + mix), (False,) * 120)

    checks = _by_name(judge_recent_answers(champion, challenger, RULES, "w"))

    assert checks[DRIFT_CHECK].passed is True
    assert (
        "on the 72 of 120 recent messages (w) the champion answered" in checks[DRIFT_CHECK].reason
    )
    assert checks[FALLBACK_CHECK].passed is True  # fewer fallbacks is never a problem


def test_prediction_drift_is_not_judged_when_the_champion_answered_too_few():
    mix = [INTENTS[i % 6] for i in range(60)]
    checks = _by_name(
        judge_recent_answers(_answers("1", mix, 20), _answers("2", mix, 20), RULES, "w")
    )

    assert checks[DRIFT_CHECK].passed is True
    assert checks[DRIFT_CHECK].reason.startswith(
        "not judged: only the 40 of 60 recent messages (w) the champion answered"
    )


def test_answers_with_intents_the_champion_never_learnt_are_learning_not_drift():
    # The champion confidently (and wrongly) calls 48 messages intent_0; the challenger learnt
    # their real intent, lost_phone, from agents' labels.
    mix = [INTENTS[i % 6] for i in range(72)]
    champion = _answers("1", ["intent_0"] * 48 + mix, 0)
    challenger = _answers("2", ["lost_phone"] * 48 + mix, 0)

    as_drift = _by_name(judge_recent_answers(champion, challenger, RULES, "w"))
    as_learnt = _by_name(
        judge_recent_answers(champion, challenger, RULES, "w", frozenset({"lost_phone"}))
    )

    assert as_drift[DRIFT_CHECK].passed is False
    assert as_learnt[DRIFT_CHECK].passed is True
    assert "the 72 of 120 recent messages (w) the champion answered (leaving out 48 the " in (
        as_learnt[DRIFT_CHECK].reason
    )


def test_too_few_recent_messages_are_not_judged_and_pass():
    mix = INTENTS * 3  # 18 messages, every one a fallback for the challenger
    checks = judge_recent_answers(_answers("1", mix, 0), _answers("2", mix, 18), RULES, "w")

    assert [c.name for c in checks] == [FALLBACK_CHECK, DRIFT_CHECK]
    assert all(c.passed for c in checks)
    assert all(c.reason.startswith("not judged: only 18 recent messages") for c in checks)


def test_messages_without_text_are_named_as_the_reason():
    problem = window_problem(300, 12, RULES, "last 24 h")
    assert problem is not None
    assert "300 recent messages" in problem and "only 12 with their text" in problem
    assert "SERVING_RECORD_TEXT" in problem
    assert window_problem(300, 50, RULES, "w") is None


@pytest.mark.parametrize(
    "bad",
    [
        {"min_messages": 0},
        {"fallback_tolerance": -0.1},
        {"max_fallback_rate": 0.0},
        {"max_prediction_drift": 1.5},
        {"window_hours": 0},
    ],
)
def test_bad_thresholds_are_refused_by_name(bad):
    with pytest.raises(ValueError, match=f"recent_{next(iter(bad))}"):
        RecentDriftRules(**bad)


def test_an_unreadable_store_fails_both_checks_instead_of_passing_them(tmp_path):
    registry = IntentRegistry(RegistryConfig(f"sqlite:///{tmp_path / 'mlflow.db'}"))
    unreadable = f"sqlite:///{tmp_path}"  # a folder, not a database file

    checks = recent_drift_checks(registry, "2", "1", unreadable, GateDriftSettings())

    assert [c.name for c in checks] == [FALLBACK_CHECK, DRIFT_CHECK]
    assert not any(c.passed for c in checks)
    assert all("could not be read from the store: OperationalError" in c.reason for c in checks)


def test_bad_gate_drift_settings_name_the_variable(monkeypatch):
    monkeypatch.setenv("GATE_DRIFT_MAX_MESSAGES", "10")
    with pytest.raises(SettingsProblem, match="GATE_DRIFT_MAX_MESSAGES must be ≥ GATE_DRIFT_MIN"):
        load_settings(GateDriftSettings)

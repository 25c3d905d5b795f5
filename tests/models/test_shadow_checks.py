"""The gate's shadow checks (pure) and the reader of shadow pairs from a real SQLite store."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta

import pytest

from conversations import store_engine
from conversations.schema import LabelSource, LabelTrust, PredictionRole
from conversations.writer import LabelRecord, PredictionRecord, insert_labels, insert_predictions
from models.settings_errors import SettingsProblem
from models.shadow_checks import ShadowPair, ShadowRules, ShadowSample, compare, shadow_checks
from models.shadow_sample import read_shadow_sample, shadow_gate_checks, shadow_gate_settings

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def pair(
    served: str,
    shadow: str,
    *,
    shadow_fallback: bool = False,
    truth: str | None = None,
    shadow_confidence: float = 0.9,
) -> ShadowPair:
    return ShadowPair(served, 0.9, False, shadow, shadow_confidence, shadow_fallback, truth)


def by_name(sample: ShadowSample, rules: ShadowRules | None = None) -> dict:
    return {check.name: check for check in shadow_checks(sample, rules or ShadowRules())}


def test_no_shadow_sample_is_not_judged_and_not_refused_by_default() -> None:
    checks = by_name(ShadowSample("2", "1"))
    assert all(check.passed for check in checks.values())
    assert checks["shadow_sample"].reason.startswith("no shadow sample yet: not judged")


def test_a_required_minimum_refuses_a_challenger_with_too_few_pairs() -> None:
    sample = ShadowSample("2", "1", tuple(pair("a", "a") for _ in range(5)))
    checks = by_name(sample, ShadowRules(min_samples=50))
    assert not checks["shadow_sample"].passed
    assert "5 live messages" in checks["shadow_sample"].reason
    assert "minimum 50" in checks["shadow_sample"].reason


def test_a_first_model_is_never_refused_for_want_of_a_champion_to_compare_with() -> None:
    checks = by_name(ShadowSample("1", None), ShadowRules(min_samples=50))
    assert checks["shadow_sample"].passed
    assert checks["shadow_sample"].reason == "no champion yet: nothing to compare with"


def test_a_handful_of_pairs_is_not_judged() -> None:
    sample = ShadowSample("2", "1", tuple(pair("a", "b") for _ in range(5)))
    checks = by_name(sample, ShadowRules(min_judged=30))
    assert checks["shadow_agreement"].passed
    assert "not judged" in checks["shadow_agreement"].reason


def test_disagreement_more_fallback_and_less_confidence_fail_with_their_numbers() -> None:
    pairs = [pair("a", "a") for _ in range(20)] + [
        pair("a", "nlu_fallback", shadow_fallback=True, shadow_confidence=0.2) for _ in range(20)
    ]
    checks = by_name(ShadowSample("2", "1", tuple(pairs)), ShadowRules(min_judged=30))
    assert not checks["shadow_agreement"].passed
    assert "50.0% of 40 live messages" in checks["shadow_agreement"].reason
    assert not checks["shadow_fallback"].passed
    assert "50.0%" in checks["shadow_fallback"].reason
    assert not checks["shadow_confidence"].passed
    assert "0.550 vs champion 0.900" in checks["shadow_confidence"].reason


def test_accuracy_on_labelled_pairs_decides_when_there_are_enough_labels() -> None:
    # The challenger learnt an intent the champion did not know: it disagrees where it is right.
    pairs = [pair("a", "a", truth="a") for _ in range(30)] + [
        pair("a", "b", truth="b") for _ in range(10)
    ]
    rules = ShadowRules(min_judged=30, min_agreement=0.7, min_labelled=10)
    checks = by_name(ShadowSample("2", "1", tuple(pairs)), rules)
    assert all(check.passed for check in checks.values()), checks
    assert "100.0% of 40 live messages labelled since, champion 75.0%" in (
        checks["shadow_accuracy"].reason
    )
    worse = [pair("a", "b", truth="a") for _ in range(40)]
    refused = by_name(ShadowSample("2", "1", tuple(worse)), rules)
    assert not refused["shadow_accuracy"].passed


def test_compare_summarises_the_sample() -> None:
    comparison = compare(ShadowSample("2", "1", (pair("a", "a"), pair("a", "b"))))
    assert (comparison.samples, comparison.agreement, comparison.labelled) == (2, 0.5, 0)


def prediction(
    role: PredictionRole, pair_id: str, version: str, intent: str, text: str, hashed: bool = False
) -> PredictionRecord:
    return PredictionRecord(
        message_id=f"http-{role}-{pair_id}",
        intent=intent,
        confidence=0.8,
        fallback=intent == "nlu_fallback",
        model_name="intent-classifier",
        model_version=version,
        ts=T0,
        channel="http" if role is PredictionRole.SERVED else "shadow",
        text=None if hashed else text,
        text_sha256=hashlib.sha256(text.encode()).hexdigest() if hashed else None,
        role=role,
        pair_id=pair_id,
    )


def test_the_reader_pairs_answers_of_the_compared_versions_and_attaches_later_labels(
    tmp_path,
) -> None:
    engine = store_engine.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    records = []
    for n, (served_by, hashed) in enumerate([("1", False), ("1", True), ("0", False)]):
        text = f"where is my card {n}"
        records += [
            prediction(PredictionRole.SERVED, f"p{n}", served_by, "card_arrival", text, hashed),
            prediction(PredictionRole.SHADOW, f"p{n}", "2", "card_linking", text, hashed),
        ]
    label = LabelRecord(
        text="where is my card 1",
        intent="card_linking",
        label_source=LabelSource.AGENT,
        trust=LabelTrust.AGENT,
        ts=T0 + timedelta(hours=1),
    )
    with engine.begin() as connection:
        insert_predictions(connection, records)
        insert_labels(connection, [label])

    sample = read_shadow_sample(engine, "intent-classifier", "2", "1")
    engine.dispose()

    # p2 was served by version 0, not the champion compared with: left out.
    assert len(sample.pairs) == 2
    assert {p.served_intent for p in sample.pairs} == {"card_arrival"}
    assert {p.shadow_intent for p in sample.pairs} == {"card_linking"}
    # The label reaches the pair stored with only its text's SHA-256.
    assert sorted(str(p.true_intent) for p in sample.pairs) == ["None", "card_linking"]


def test_a_store_that_cannot_be_read_fails_the_shadow_check(tmp_path) -> None:
    (tmp_path / "dir.db").mkdir()  # a directory where the SQLite file should be
    checks = shadow_gate_checks(f"sqlite:///{tmp_path / 'dir.db'}", "intent-classifier", "2", "1")
    assert [check.name for check in checks] == ["shadow_store"]
    assert not checks[0].passed and "shadow sample not read" in checks[0].reason


def test_a_bad_shadow_setting_names_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GATE_SHADOW_MIN_AGREEMENT", "2")
    with pytest.raises(SettingsProblem, match="GATE_SHADOW_MIN_AGREEMENT"):
        shadow_gate_settings()

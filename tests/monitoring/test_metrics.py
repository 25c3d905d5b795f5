"""Pure monitoring logic: prediction drift, label performance, KPIs, the verdict, windows."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from scipy.spatial.distance import jensenshannon
from upath import UPath

from monitoring.drift_report import ColumnDrift
from monitoring.metrics import (
    IntentShift,
    LabelPerformance,
    PredictionDrift,
    RateChange,
    SupportKpis,
    js_noise_floor,
    label_performance,
    prediction_drift,
    psi,
    support_kpis,
)
from monitoring.verdict import DriftRules, verdict
from monitoring.window import resolve_window


def frame(intents: list[str], fallback_every: int = 0, confidence: float = 0.9) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "predicted_intent": intents,
            "fallback": [
                bool(fallback_every) and i % fallback_every == 0 for i in range(len(intents))
            ],
            "confidence": [confidence] * len(intents),
        }
    )


def test_identical_traffic_has_no_prediction_drift():
    reference = frame(["a", "b", "c"] * 50)
    result = prediction_drift(reference, frame(["c", "b", "a"] * 40))
    assert result.intent_js_distance == pytest.approx(0, abs=1e-6)
    assert result.grew == () and result.shrank == ()


def test_a_new_intent_mix_names_what_grew_and_shrank():
    reference = frame(["a"] * 50 + ["b"] * 50)
    current = frame(
        ["a"] * 10 + ["b"] * 50 + ["nlu_fallback"] * 40, fallback_every=2, confidence=0.5
    )
    result = prediction_drift(reference, current)
    assert result.intent_js_distance > 0.3 and result.intent_psi > 0.5
    assert result.grew[0].intent == "nlu_fallback"
    assert result.shrank[0].intent == "a"
    assert result.fallback_rate == RateChange(reference=0.0, current=0.5)
    assert result.mean_confidence.current == 0.5


def test_psi_is_zero_for_equal_shares_and_grows_with_change():
    assert psi(pd.Series([0.5, 0.5]).values, pd.Series([0.5, 0.5]).values) == pytest.approx(0)
    assert psi(pd.Series([0.5, 0.5]).values, pd.Series([0.9, 0.1]).values) > 0.4


def test_performance_needs_enough_labels():
    labels = pd.DataFrame(
        {"intent": ["a", "b", "a"], "predicted_intent": ["a", "a", "a"], "label_source": "agent"}
    )
    assert label_performance(labels, min_labels=5).to_dict() == {
        "labels": 3,
        "min_labels": 5,
        "judged": False,
    }
    judged = label_performance(labels, min_labels=3)
    assert judged.accuracy == pytest.approx(2 / 3, abs=1e-4)
    assert judged.per_intent_f1["b"] == 0.0 and judged.by_source == {"agent": 3}


def test_kpis_from_support_requests():
    requests = pd.DataFrame(
        {
            "handed_off_at": [None, datetime(2026, 1, 1), None, None],
            "status": ["resolved", "resolved", "bot", "resolved"],
            "rating": [5, 3, None, None],
        }
    )
    messages = pd.DataFrame(
        {"fallback": [True, False, False, False], "polarity": [0.5, -0.5, 0, 0]}
    )
    kpis = support_kpis(requests, messages, window_days=2)
    assert kpis.conversations == 4 and kpis.conversations_per_day == 2.0
    assert kpis.containment_rate == 0.75 and kpis.escalation_rate == 0.25
    assert kpis.resolution_rate == 0.75 and kpis.mean_rating == 4.0
    assert kpis.fallback_rate == 0.25 and kpis.mean_sentiment == 0.0


RULES = DriftRules(min_messages=10)
CALM = PredictionDrift(
    intent_js_distance=0.01,
    intent_psi=0.0,
    fallback_rate=RateChange(reference=0.04, current=0.05),
    mean_confidence=RateChange(reference=0.8, current=0.79),
    grew=(),
    shrank=(),
)
UNJUDGED = LabelPerformance(labels=0, min_labels=30)


def test_verdict_ok_drift_and_degraded():
    assert verdict(RULES, 100, [], CALM, UNJUDGED, 0.9) == ("ok", [])
    drifted = [ColumnDrift("text", "abs_text_content_drift", 0.71, 0.55, True)]
    outcome, reasons = verdict(RULES, 100, drifted, CALM, UNJUDGED, 0.9)
    assert outcome == "drift" and "word their messages differently" in reasons[0]
    unsure = replace(CALM, fallback_rate=RateChange(reference=0.04, current=0.2))
    assert verdict(RULES, 100, [], unsure, UNJUDGED, 0.9)[0] == "drift"
    wrong = LabelPerformance(labels=50, min_labels=30, judged=True, accuracy=0.7, macro_f1=0.6)
    outcome, reasons = verdict(RULES, 100, [], CALM, wrong, 0.9)
    assert outcome == "degraded" and "70.0%" in reasons[0]
    # Too few messages is its own verdict, never `ok`; judged wrong answers still count.
    outcome, reasons = verdict(RULES, 3, drifted, CALM, UNJUDGED, 0.9)
    assert outcome == "insufficient_data" and "only 3 customer messages" in reasons[0]
    assert verdict(RULES, 3, [], CALM, wrong, 0.9)[0] == "degraded"


def test_reasons_say_what_changed_in_words_with_the_numbers_beside_them():
    grew = IntentShift.between("card_arrival", 0.04, 0.12)
    mixed = replace(CALM, intent_js_distance=0.2, grew=(grew,))
    longer = ColumnDrift("length", "wasserstein", 0.31, 0.1, True)
    means = {"current": {"length": 58.0}, "reference": {"length": 41.5}}
    outcome, reasons = verdict(RULES, 100, [longer], mixed, UNJUDGED, 0.9, means)
    assert outcome == "drift"
    assert reasons[0].startswith(
        "customers ask about card arrival more than before: 12.0% of messages, was 4.0%"
    )
    assert "Jensen-Shannon distance 0.200" in reasons[0]
    assert reasons[1] == (
        "messages are longer than before: 58 on average, was 41.5 (distance 0.31, threshold 0.1)"
    )


def test_the_index_is_only_links_to_each_runs_report(tmp_path):
    # Trends are Evidently's UI; the index only lets a static copy's reader open each run.
    from monitoring.pages import index_page

    for name, word in (("20261129T000000Z", "ok"), ("20261130T000000Z", "drift")):
        run = tmp_path / name
        run.mkdir()
        document = {
            "verdict": word,
            "window_label": "a day",
            "model_version": "1",
            "current_messages": 500,
            "reasons": ["customers ask about card arrival more often than before"],
        }
        (run / "summary.json").write_text(json.dumps(document))
    page = index_page(UPath(tmp_path))
    runs = page.split('<ul id="runs">')[1].split("</ul>")[0]
    assert runs.split() == [
        "<li><a",
        "href='20261130T000000Z/index.html'>20261130T000000Z",
        "(drift)</a></li>",
        "<li><a",
        "href='20261129T000000Z/index.html'>20261129T000000Z",
        "(ok)</a></li>",
    ]
    assert "card arrival" not in page and "500" not in page and "make monitor-ui" in page


def test_the_intent_mix_noise_floor_covers_chance_and_shrinks_with_traffic():
    shares = np.full(77, 1 / 77)
    floors = [js_noise_floor(shares, 3000, n) for n in (150, 1500, 15000)]
    assert floors[0] > floors[1] > floors[2] and floors[0] > 0.1  # 0.1 alone flags noise
    rng = np.random.default_rng(1)
    reference = rng.multinomial(3000, shares) / 3000
    chance = [
        jensenshannon(reference, rng.multinomial(150, shares) / 150, base=2) for _ in range(200)
    ]
    assert np.mean(np.array(chance) < floors[0]) > 0.9


def test_window_from_hours_or_range():
    end = datetime(2026, 11, 29, tzinfo=UTC)
    window = resolve_window(24, now=end)
    assert window.days == 1 and window.end == end
    explicit = resolve_window(24, datetime(2026, 11, 1), datetime(2026, 11, 3))
    assert explicit.days == 2 and explicit.start.tzinfo is not None
    with pytest.raises(ValueError, match="not before"):
        resolve_window(24, datetime(2026, 11, 3), datetime(2026, 11, 1))


def test_kpis_read_back_from_summary_json_are_the_ones_written():
    requests = pd.DataFrame(
        {
            "handed_off_at": [None, datetime(2026, 1, 1)],
            "status": ["resolved", "bot"],
            "rating": [None, None],  # no ratings: mean_rating is written as null
        }
    )
    messages = pd.DataFrame({"fallback": [True, False], "polarity": [0.25, None]})
    busy = support_kpis(requests, messages, window_days=0.5)
    quiet = support_kpis(requests.head(0), messages.head(0), window_days=1)
    # No conversations: the request rates are left out of summary.json, not written as null.
    assert set(quiet.to_dict()) == {
        "conversations",
        "conversations_per_day",
        "fallback_rate",
        "mean_sentiment",
    }
    for kpis in (busy, quiet):
        document = json.loads(json.dumps(kpis.to_dict()))
        assert SupportKpis.from_dict(document) == kpis
        assert SupportKpis.from_dict(document).to_dict() == document

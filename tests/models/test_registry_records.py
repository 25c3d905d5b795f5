"""Gate history entries read back from a version's tag and written again, unchanged."""

from __future__ import annotations

import json

import pytest

from models.gate_records import Check, GateDecision
from models.registry_records import GateRecord, PromotionState, parse_gate_entries

# A tag as the gate writes it: a refusal, a passing decision promoted against no champion
# (champion_before null), and a forced promotion.
TAG = json.dumps(
    [
        {
            "version": "2",
            "passed": False,
            "checks": [{"name": "beats_champion", "passed": False, "reason": "gain -0.01"}],
            "decided_at": "2026-11-02T09:00:00+00:00",
        },
        {
            "version": "2",
            "passed": True,
            "checks": [{"name": "accuracy_floor", "passed": True, "reason": "0.93 >= 0.85"}],
            "decided_at": "2026-11-03T09:00:00+00:00",
            "promotion": "done",
            "champion_before": None,
        },
        {
            "version": "2",
            "passed": True,
            "checks": [{"name": "forced", "passed": True, "reason": "hotfix"}],
            "decided_at": "2026-11-04T09:00:00+00:00",
        },
    ]
)


def test_a_gate_tag_reads_back_into_records_and_writes_the_same_json():
    refused, promoted, forced = parse_gate_entries(TAG)
    assert not refused.passed and refused.promotion is None
    assert promoted.promotion is PromotionState.DONE and promoted.champion_before is None
    assert forced.checks == (Check("forced", True, "hotfix"),)
    assert json.dumps([entry.to_dict() for entry in (refused, promoted, forced)]) == TAG


def test_a_new_record_carries_its_decision_and_a_pending_promotion():
    decision = GateDecision("3", [Check("accuracy_floor", True, "ok")])
    record = GateRecord.of(decision, promotion=PromotionState.PENDING, champion_before="2")
    document = json.loads(json.dumps(record.to_dict()))
    assert document["promotion"] == "pending" and document["champion_before"] == "2"
    assert document["passed"] is True and document["decided_at"]
    assert GateRecord.from_dict(document) == record


def test_an_unknown_promotion_state_is_refused_not_guessed():
    entry = json.loads(TAG)[1] | {"promotion": "half-done"}
    with pytest.raises(ValueError, match="half-done"):
        GateRecord.from_dict(entry)
    assert parse_gate_entries(None) == []

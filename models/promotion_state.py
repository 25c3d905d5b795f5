"""Applying a passing gate decision so that a crash between its registry writes is finished later.

A promotion is three writes: the decision (the version's `gate_decisions` tag), the `champion`
alias, and removing `challenger`. A passing decision is stored first, marked
`"promotion": "pending"` together with the champion it was judged against; the aliases move
next; the mark becomes `"done"` last. A rerun that finds the version already judged calls
`apply_pending` again, which finishes whatever the killed process did not. If `champion` was
moved by someone else since the decision (it is neither this version nor the one judged
against), the pending promotion is dropped as `"superseded"` rather than undoing their move.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from models import faults
from models.faults import Boundary
from models.gate_records import GateDecision
from models.registry import CHALLENGER, CHAMPION, IntentRegistry
from models.registry_records import GateRecord, PromotionState

__all__ = ["PromotionState", "apply_pending", "held_for_shadow", "record_decision"]
logger = logging.getLogger(__name__)


def record_decision(registry: IntentRegistry, decision: GateDecision, held: bool = False) -> None:
    """Store the gate's decision; a passing one as a pending promotion, a held one as held."""
    champion = registry.version_by_alias(CHAMPION)
    before = str(champion.version) if champion else None
    if not decision.passed:
        state = PromotionState.HELD if held else None
        registry.record_gate(GateRecord.of(decision, None, state, before if held else None))
        return
    registry.record_gate(GateRecord.of(decision, None, PromotionState.PENDING, before))


def held_for_shadow(registry: IntentRegistry, version: str) -> bool:
    """True when the version's latest decision held it for a larger shadow sample."""
    entries = registry.gate_entries(version)
    return bool(entries) and entries[-1].promotion is PromotionState.HELD


def apply_pending(registry: IntentRegistry, version: str) -> PromotionState | None:
    """Finish the pending promotion of `version`; None when none is pending."""
    entries = registry.gate_entries(version)
    if not entries or entries[-1].promotion is not PromotionState.PENDING:
        return None
    champion = registry.version_by_alias(CHAMPION)
    current = str(champion.version) if champion else None
    if current in (version, entries[-1].champion_before):
        registry.promote(version)  # a no-op when the killed process already moved it
        faults.reached(Boundary.CHAMPION_SET)
        state = PromotionState.DONE
    else:
        logger.warning(
            "version %s passed the gate against champion %s, but champion is now %s: leaving it",
            version,
            entries[-1].champion_before,
            current,
        )
        state = PromotionState.SUPERSEDED
    challenger = registry.version_by_alias(CHALLENGER)
    if challenger is not None and str(challenger.version) == version:
        registry.client.delete_registered_model_alias(registry.name, CHALLENGER)
    entries = registry.gate_entries(version)
    entries[-1] = replace(entries[-1], promotion=state)
    registry.write_gate_entries(version, entries)
    return state

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
from enum import StrEnum

from models import faults
from models.faults import Boundary
from models.promotion import GateDecision
from models.registry import CHALLENGER, CHAMPION, IntentRegistry

logger = logging.getLogger(__name__)
PROMOTION = "promotion"
CHAMPION_BEFORE = "champion_before"


class PromotionState(StrEnum):
    """Where a passing decision's promotion stands."""

    PENDING = "pending"
    DONE = "done"
    SUPERSEDED = "superseded"


def record_decision(registry: IntentRegistry, decision: GateDecision) -> None:
    """Store the gate's decision; a passing one as a pending promotion."""
    extra = {}
    if decision.passed:
        champion = registry.version_by_alias(CHAMPION)
        extra = {
            PROMOTION: PromotionState.PENDING.value,
            CHAMPION_BEFORE: str(champion.version) if champion else None,
        }
    registry.record_gate(decision, extra=extra)


def apply_pending(registry: IntentRegistry, version: str) -> PromotionState | None:
    """Finish the pending promotion of `version`; None when none is pending."""
    entries = registry.gate_entries(version)
    if not entries or entries[-1].get(PROMOTION) != PromotionState.PENDING:
        return None
    champion = registry.version_by_alias(CHAMPION)
    current = str(champion.version) if champion else None
    if current in (version, entries[-1].get(CHAMPION_BEFORE)):
        registry.promote(version)  # a no-op when the killed process already moved it
        faults.reached(Boundary.CHAMPION_SET)
        state = PromotionState.DONE
    else:
        logger.warning(
            "version %s passed the gate against champion %s, but champion is now %s: leaving it",
            version,
            entries[-1].get(CHAMPION_BEFORE),
            current,
        )
        state = PromotionState.SUPERSEDED
    challenger = registry.version_by_alias(CHALLENGER)
    if challenger is not None and str(challenger.version) == version:
        registry.client.delete_registered_model_alias(registry.name, CHALLENGER)
    entries = registry.gate_entries(version)
    entries[-1][PROMOTION] = state.value
    registry.write_gate_entries(version, entries)
    return state

"""The registry's records: a version's description, the `status` document, gate history entries.

Each record is what `make status`, serving's /version, the notebook and the monitoring report
read; `to_dict()` is its JSON form (unchanged from the documents these records replaced), and a
gate entry is read back from the version's `gate_decisions` tag with `GateRecord.from_dict`.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

from models.gate_records import Check, GateDecision


class PromotionState(StrEnum):
    """Where a passing decision's promotion stands (models/promotion_state.py)."""

    PENDING = "pending"
    DONE = "done"
    SUPERSEDED = "superseded"
    # Not passed, not refused: only the shadow sample was too small (models/shadow_checks.py);
    # the next model_promotion of the version judges it again.
    HELD = "held"


@dataclass(frozen=True)
class GateRecord:
    """One entry of a version's gate history: a decision, when it was made, its promotion."""

    version: str
    passed: bool
    checks: tuple[Check, ...]
    decided_at: str | None = None
    # Only a passing gate decision carries these: forced promotions, rollbacks and refusals
    # have no promotion left to finish.
    promotion: PromotionState | None = None
    champion_before: str | None = None

    @classmethod
    def of(
        cls,
        decision: GateDecision,
        decided_at: datetime | None = None,
        promotion: PromotionState | None = None,
        champion_before: str | None = None,
    ) -> GateRecord:
        """The entry recording `decision` (at `decided_at`, default now)."""
        return cls(
            version=decision.version,
            passed=decision.passed,
            checks=tuple(decision.checks),
            decided_at=(decided_at or datetime.now(UTC)).isoformat(),
            promotion=promotion,
            champion_before=champion_before,
        )

    @classmethod
    def from_dict(cls, entry: Mapping[str, Any]) -> GateRecord:
        """An entry as stored in the tag (JSON); KeyError/ValueError if it is not one."""
        promotion = entry.get("promotion")
        return cls(
            version=str(entry["version"]),
            passed=bool(entry["passed"]),
            checks=tuple(
                Check(str(check["name"]), bool(check["passed"]), str(check["reason"]))
                for check in entry["checks"]
            ),
            decided_at=entry.get("decided_at"),
            promotion=PromotionState(promotion) if promotion is not None else None,
            champion_before=entry.get("champion_before"),
        )

    def to_dict(self) -> dict[str, object]:
        """The documented `gate_history` entry (keys absent when the record has no value)."""
        entry: dict[str, object] = {
            "version": self.version,
            "passed": self.passed,
            "checks": [asdict(check) for check in self.checks],
        }
        if self.decided_at is not None:
            entry["decided_at"] = self.decided_at
        if self.promotion is not None:
            entry["promotion"] = self.promotion.value
            entry["champion_before"] = self.champion_before
        return entry


def parse_gate_entries(tag: str | None) -> list[GateRecord]:
    """The entries of a `gate_decisions` tag value, oldest first (none for no tag)."""
    return [GateRecord.from_dict(entry) for entry in json.loads(tag or "[]")]


@dataclass(frozen=True)
class VersionDescription:
    """A model version as `status`, /version and the pipeline's metadata describe it."""

    version: str
    run_id: str | None
    trained_at: str | None
    metrics: dict[str, float]
    fallback_threshold: float | None
    fallback_margin: float | None
    aliases: tuple[str, ...]

    def to_dict(self) -> dict[str, object]:
        """The `status` entry of a version."""
        return {
            "version": self.version,
            "run_id": self.run_id,
            "trained_at": self.trained_at,
            "metrics": dict(self.metrics),
            "fallback_threshold": self.fallback_threshold,
            "fallback_margin": self.fallback_margin,
            "aliases": list(self.aliases),
        }


@dataclass(frozen=True)
class RegistryStatus:
    """The `make status` document: champion, challenger and every gate decision."""

    model_name: str
    champion: VersionDescription | None
    challenger: VersionDescription | None
    gate_history: tuple[GateRecord, ...]

    def to_dict(self) -> dict[str, object]:
        """As `make status` prints it."""
        return {
            "model_name": self.model_name,
            "champion": self.champion.to_dict() if self.champion else None,
            "challenger": self.challenger.to_dict() if self.challenger else None,
            "gate_history": [entry.to_dict() for entry in self.gate_history],
        }

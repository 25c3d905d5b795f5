"""Promotion rules: pure functions that decide whether a challenger replaces the champion.

Every check returns a named result with a human reason, so the decision can be recorded on the
model version and shown to people. Both models are scored on the same frozen test split.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class PromotionRules:
    """Thresholds of the gate."""

    min_improvement: float = 0.0
    accuracy_floor: float = 0.85


@dataclass(frozen=True)
class ModelScore:
    """A model version's scores on the current frozen test split."""

    version: str
    test_accuracy: float
    macro_f1: float


@dataclass(frozen=True)
class GateInputs:
    """Everything a check may look at."""

    challenger: ModelScore
    champion: ModelScore | None
    rules: PromotionRules


@dataclass(frozen=True)
class Check:
    """One rule's verdict."""

    name: str
    passed: bool
    reason: str


@dataclass(frozen=True)
class GateDecision:
    """All checks and the overall verdict (passes only if every check passes)."""

    version: str
    checks: list[Check] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        """True when every check passed."""
        return all(check.passed for check in self.checks)

    def to_dict(self) -> dict[str, Any]:
        """The documented `gate_history` entry shape."""
        return {
            "version": self.version,
            "passed": self.passed,
            "checks": [asdict(check) for check in self.checks],
        }


def check_accuracy_floor(inputs: GateInputs) -> Check:
    """The challenger's test accuracy reaches the configured floor."""
    accuracy, floor = inputs.challenger.test_accuracy, inputs.rules.accuracy_floor
    passed = accuracy >= floor
    relation = ">=" if passed else "<"
    return Check(
        "accuracy_floor", passed, f"test_accuracy {accuracy:.4f} {relation} floor {floor:.4f}"
    )


def check_beats_champion(inputs: GateInputs) -> Check:
    """The challenger beats the champion's test accuracy by at least the configured margin."""
    champion, challenger = inputs.champion, inputs.challenger
    if champion is None:
        return Check("beats_champion", True, "no champion yet: the floor decides")
    needed = champion.test_accuracy + inputs.rules.min_improvement
    gain = challenger.test_accuracy - champion.test_accuracy
    # Equal scores never promote: a retrain that changes nothing must not move the champion.
    passed = challenger.test_accuracy >= needed and gain > 0
    return Check(
        "beats_champion",
        passed,
        f"test_accuracy {challenger.test_accuracy:.4f} vs champion v{champion.version} "
        f"{champion.test_accuracy:.4f} (gain {gain:+.4f}, required > 0 and >= "
        f"{inputs.rules.min_improvement:+.4f})",
    )


CHECKS: tuple[Callable[[GateInputs], Check], ...] = (check_accuracy_floor, check_beats_champion)


def decide_promotion(inputs: GateInputs) -> GateDecision:
    """Run every check on the challenger."""
    return GateDecision(inputs.challenger.version, [check(inputs) for check in CHECKS])

"""The gate's records: its rules, the scores it compares, its inputs, checks and decision.

Typed records shared by the gate's checks (models/promotion.py), the checks computed elsewhere
and handed to it (models/shadow_checks.py, monitoring/gate_drift.py) and what stores a decision
on a model version (models/registry.py).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # types only: models.baselines imports scikit-learn, which serving's
    # arbiter process (it imports the service to read its config) never needs.
    from models.baselines import BaselineScore
    from models.behavioural import BehaviouralResult
    from models.data_quality import DataQualityResult


@dataclass(frozen=True)
class PromotionRules:
    """Thresholds of the gate."""

    min_improvement: float = 0.0
    # None: no absolute floor; the first model must beat the baselines by `baseline_margin`.
    accuracy_floor: float | None = None
    baseline_margin: float = 0.0
    # No intent with at least `min_intent_support` test examples may lose more F1 than this.
    max_intent_f1_drop: float = 0.10
    min_intent_support: int = 10
    # Recent agent labels on held-out texts (the `feedback` split, models/examples.py).
    min_feedback_labels: int = 10
    feedback_tolerance: float = 0.0
    # A challenger that learnt new intents and is more accurate on those labels may give back
    # this much frozen-test accuracy: its new intents take a few old messages that resemble them.
    max_test_loss_when_taught: float = 0.005
    # Behavioural tests.
    min_invariance: float = 0.85
    min_functionality: float = 0.9


@dataclass(frozen=True)
class ModelScore:
    """A model version's scores on the current frozen test split."""

    version: str
    test_accuracy: float
    macro_f1: float
    per_intent_f1: dict[str, float] = field(default_factory=dict)
    # Accuracy on the recent feedback labels (None when there are none).
    feedback_accuracy: float | None = None


@dataclass(frozen=True)
class GateInputs:
    """Everything a check may look at. A check whose input is missing fails: not evaluated
    is not passed."""

    challenger: ModelScore
    champion: ModelScore | None
    rules: PromotionRules
    intent_support: dict[str, int] = field(default_factory=dict)
    feedback_labels: int = 0
    behavioural: BehaviouralResult | None = None
    data_quality: DataQualityResult | None = None
    # Trained in the same run on the challenger's training split, scored on the same test split.
    baselines: tuple[BaselineScore, ...] = ()
    # Intents the challenger answers that the champion never learnt (agents taught them).
    new_intents: tuple[str, ...] = ()


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

    def to_dict(self) -> dict[str, object]:
        """The decision as JSON: what `make promote` prints and the promotion asset stores."""
        return {
            "version": self.version,
            "passed": self.passed,
            "checks": [asdict(check) for check in self.checks],
        }

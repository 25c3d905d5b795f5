"""Gate checks on the challenger's shadow sample: its answers to live traffic beside the champion's.

Pure: the sample is read from the store elsewhere (models/shadow_sample.py) and the checks are
handed to `models.promotion.decide_promotion` as `live_checks`. Each check names its numbers.

The rule for a small sample (ShadowRules):
- `min_samples` (GATE_SHADOW_MIN_SAMPLES, default 0) is how many shadow pairs a challenger
  must have. 0 requires none: a challenger nobody has shadowed yet is not refused for that
  alone (`shadow_sample` passes, "no shadow sample yet: not judged"). Set above 0, a challenger
  with fewer pairs fails `shadow_sample`; when that is the only failing check the version is
  held, not refused (`waits_for_shadow_sample`): a later `model_promotion` judges it again on
  the sample serving has gathered meanwhile (models/promotion_state.py).
- `min_judged` (GATE_SHADOW_MIN_JUDGED, default 30) is how many pairs the comparison checks
  need before they judge: below it, agreement, fallback and confidence pass as "not judged"
  (a handful of messages says nothing). Accuracy needs `min_labelled` labelled pairs.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from models.gate_records import Check

SAMPLE_CHECK = "shadow_sample"


@dataclass(frozen=True)
class ShadowPair:
    """One live message: the answer served and the challenger's, and a later label if any."""

    served_intent: str
    served_confidence: float
    served_fallback: bool
    shadow_intent: str
    shadow_confidence: float
    shadow_fallback: bool
    # The intent an agent or /feedback gave the message afterwards (None: not labelled).
    true_intent: str | None = None


@dataclass(frozen=True)
class ShadowSample:
    """The challenger's shadow pairs against one served version."""

    challenger_version: str
    served_version: str | None
    pairs: tuple[ShadowPair, ...] = ()


@dataclass(frozen=True)
class ShadowRules:
    """Thresholds of the shadow checks (GATE_SHADOW_* settings, models/shadow_sample.py)."""

    min_samples: int = 0
    min_judged: int = 30
    min_agreement: float = 0.8  # share of messages with the champion's intent
    fallback_tolerance: float = 0.05  # fallback rate at most this much above the champion's
    confidence_tolerance: float = 0.1  # mean confidence at most this much below the champion's
    min_labelled: int = 10
    accuracy_tolerance: float = 0.0  # accuracy on labelled pairs at most this much below


@dataclass(frozen=True)
class ShadowComparison:
    """What the sample says, in numbers (`make status` shows it as it is)."""

    challenger_version: str
    served_version: str | None
    samples: int
    agreement: float | None
    served_fallback_rate: float | None
    shadow_fallback_rate: float | None
    served_mean_confidence: float | None
    shadow_mean_confidence: float | None
    labelled: int
    served_accuracy: float | None
    shadow_accuracy: float | None


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


def compare(sample: ShadowSample) -> ShadowComparison:
    """The sample's agreement, fallback rates, mean confidences and accuracy on labelled pairs."""
    pairs = sample.pairs
    labelled = [pair for pair in pairs if pair.true_intent is not None]
    return ShadowComparison(
        challenger_version=sample.challenger_version,
        served_version=sample.served_version,
        samples=len(pairs),
        agreement=_mean([float(p.served_intent == p.shadow_intent) for p in pairs]),
        served_fallback_rate=_mean([float(p.served_fallback) for p in pairs]),
        shadow_fallback_rate=_mean([float(p.shadow_fallback) for p in pairs]),
        served_mean_confidence=_mean([p.served_confidence for p in pairs]),
        shadow_mean_confidence=_mean([p.shadow_confidence for p in pairs]),
        labelled=len(labelled),
        served_accuracy=_mean([float(p.served_intent == p.true_intent) for p in labelled]),
        shadow_accuracy=_mean([float(p.shadow_intent == p.true_intent) for p in labelled]),
    )


def check_shadow_sample(comparison: ShadowComparison, rules: ShadowRules) -> Check:
    """The challenger has the shadow sample the rules require (none by default)."""
    n, needed = comparison.samples, rules.min_samples
    if comparison.served_version is None:  # a first model: no live answers to compare with
        return Check(SAMPLE_CHECK, True, "no champion yet: nothing to compare with")
    if n == 0 and needed == 0:
        return Check(
            SAMPLE_CHECK, True, "no shadow sample yet: not judged (GATE_SHADOW_MIN_SAMPLES 0)"
        )
    passed = n >= needed
    return Check(
        SAMPLE_CHECK,
        passed,
        f"{n} live messages scored by the challenger beside version "
        f"{comparison.served_version} ({'>=' if passed else '<'} minimum {needed})",
    )


def _not_judged(name: str, comparison: ShadowComparison, rules: ShadowRules) -> Check | None:
    if comparison.samples >= max(rules.min_judged, 1):
        return None
    return Check(
        name,
        True,
        f"{comparison.samples} shadow pairs (< {max(rules.min_judged, 1)}): not judged",
    )


def check_shadow_agreement(comparison: ShadowComparison, rules: ShadowRules) -> Check:
    """The challenger gives the champion's intent on most live messages."""
    skipped = _not_judged("shadow_agreement", comparison, rules)
    if skipped is not None or comparison.agreement is None:
        return skipped or Check("shadow_agreement", True, "no shadow pairs: not judged")
    agreement = comparison.agreement
    passed = agreement >= rules.min_agreement
    return Check(
        "shadow_agreement",
        passed,
        f"the challenger agrees with version {comparison.served_version} on {agreement:.1%} of "
        f"{comparison.samples} live messages ({'>=' if passed else '<'} minimum "
        f"{rules.min_agreement:.0%})",
    )


def check_shadow_fallback(comparison: ShadowComparison, rules: ShadowRules) -> Check:
    """The challenger falls back on live traffic no more than the tolerance above the champion."""
    skipped = _not_judged("shadow_fallback", comparison, rules)
    served, shadow = comparison.served_fallback_rate, comparison.shadow_fallback_rate
    if skipped is not None or served is None or shadow is None:
        return skipped or Check("shadow_fallback", True, "no shadow pairs: not judged")
    passed = shadow <= served + rules.fallback_tolerance
    return Check(
        "shadow_fallback",
        passed,
        f"the challenger would hand {shadow:.1%} of {comparison.samples} live messages to "
        f"fallback, the champion {served:.1%} (tolerance +{rules.fallback_tolerance:.1%})",
    )


def check_shadow_confidence(comparison: ShadowComparison, rules: ShadowRules) -> Check:
    """The challenger's mean confidence on live traffic is not much below the champion's."""
    skipped = _not_judged("shadow_confidence", comparison, rules)
    served, shadow = comparison.served_mean_confidence, comparison.shadow_mean_confidence
    if skipped is not None or served is None or shadow is None:
        return skipped or Check("shadow_confidence", True, "no shadow pairs: not judged")
    passed = shadow >= served - rules.confidence_tolerance
    return Check(
        "shadow_confidence",
        passed,
        f"mean confidence on {comparison.samples} live messages {shadow:.3f} vs champion "
        f"{served:.3f} (tolerance -{rules.confidence_tolerance:.3f})",
    )


def check_shadow_accuracy(comparison: ShadowComparison, rules: ShadowRules) -> Check:
    """On shadowed messages labelled later (agents, /feedback): not less accurate."""
    served, shadow, n = comparison.served_accuracy, comparison.shadow_accuracy, comparison.labelled
    if n < max(rules.min_labelled, 1) or served is None or shadow is None:
        return Check(
            "shadow_accuracy",
            True,
            f"{n} shadowed messages labelled since (< {max(rules.min_labelled, 1)}): not judged",
        )
    passed = shadow >= served - rules.accuracy_tolerance
    return Check(
        "shadow_accuracy",
        passed,
        f"right on {shadow:.1%} of {n} live messages labelled since, champion {served:.1%} "
        f"(tolerance -{rules.accuracy_tolerance:.1%})",
    )


def waits_for_shadow_sample(checks: Sequence[Check]) -> bool:
    """True when the only failing check is a shadow sample below its minimum.

    Such a version is held rather than refused: nothing is wrong with it yet, live traffic has
    just not said enough.
    """
    failing = [check for check in checks if not check.passed]
    return len(failing) == 1 and failing[0].name == SAMPLE_CHECK


def shadow_checks(sample: ShadowSample, rules: ShadowRules) -> list[Check]:
    """Every shadow check of the sample, in a fixed order."""
    comparison = compare(sample)
    return [
        check_shadow_sample(comparison, rules),
        check_shadow_agreement(comparison, rules),
        check_shadow_fallback(comparison, rules),
        check_shadow_confidence(comparison, rules),
        check_shadow_accuracy(comparison, rules),
    ]

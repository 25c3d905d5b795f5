"""The verdict of a monitoring run and its reasons in plain words: pure, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from monitoring.metrics import LabelPerformance, PredictionDrift, Verdict


@dataclass(frozen=True)
class DriftRules:
    """Thresholds of the verdict."""

    intent_js_threshold: float = 0.1
    fallback_rate_increase: float = 0.05
    confidence_drop: float = 0.05
    max_accuracy_drop: float = 0.05
    min_messages: int = 30


def too_few_messages(messages: int, minimum: int) -> str:
    """The reason of an `insufficient_data` verdict."""
    return (
        f"only {messages} customer messages in the window, {minimum} are needed to judge: "
        "rates and shares of so few messages swing by chance, so nothing was judged"
    )


def verdict(
    rules: DriftRules,
    messages: int,
    drifted_columns: Sequence[str],
    predictions: PredictionDrift,
    performance: LabelPerformance,
    reference_accuracy: float | None,
) -> tuple[Verdict, list[str]]:
    """`degraded`, `insufficient_data`, `drift` or `ok`, with the reasons in plain words.

    Enough labels showing wrong answers are evidence however few messages came in, so
    `degraded` is judged first; otherwise too few messages are their own verdict.
    """
    reasons: list[str] = []
    accuracy = performance.accuracy
    if performance.judged and accuracy is not None and reference_accuracy is not None:
        floor = reference_accuracy - rules.max_accuracy_drop
        if accuracy < floor:
            reasons.append(
                f"accuracy on {performance.labels} recent labels is "
                f"{accuracy:.1%}, below {floor:.1%} (the model's test accuracy "
                f"{reference_accuracy:.1%} minus {rules.max_accuracy_drop:.0%})"
            )
            return Verdict.DEGRADED, reasons
    if messages < rules.min_messages:
        return Verdict.INSUFFICIENT_DATA, [too_few_messages(messages, rules.min_messages)]
    if drifted_columns:
        reasons.append("the distribution changed for: " + ", ".join(drifted_columns))
    if predictions.intent_js_distance >= rules.intent_js_threshold:
        reasons.append(
            f"the mix of predicted intents moved (Jensen-Shannon distance "
            f"{predictions.intent_js_distance:.3f} ≥ {rules.intent_js_threshold})"
        )
    # `current` is None only for an empty window, which min_messages has turned away above.
    fallback = predictions.fallback_rate
    if (
        fallback.current is not None
        and fallback.current - fallback.reference >= rules.fallback_rate_increase
    ):
        reasons.append(
            f"the bot was unsure more often: fallback rate {fallback.current:.1%} "
            f"against {fallback.reference:.1%} on the model's held-out test data"
        )
    confidence = predictions.mean_confidence
    if (
        confidence.current is not None
        and confidence.reference - confidence.current >= rules.confidence_drop
    ):
        reasons.append(
            f"mean confidence fell to {confidence.current:.2f} from {confidence.reference:.2f}"
        )
    return (Verdict.DRIFT if reasons else Verdict.OK), reasons

"""The verdict of a monitoring run and its reasons in plain words: pure, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monitoring.metrics import LabelPerformance, PredictionDrift, Verdict

if TYPE_CHECKING:
    from monitoring.drift_report import ColumnDrift


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


def plain_intent(intent: str) -> str:
    """An intent name as a support manager says it: `card_arrival` -> "card arrival"."""
    return intent.replace("_", " ").strip()


def _mix_reason(predictions: PredictionDrift, threshold: float) -> str:
    """Which requests grew or shrank most, with their shares; the distance beside them."""
    distance = f"(mix of requests: Jensen-Shannon distance {predictions.intent_js_distance:.3f}"
    distance += f", threshold {threshold:.3g})"
    if predictions.grew:
        top = predictions.grew[0]
        return (
            f"customers ask about {plain_intent(top.intent)} more than before: "
            f"{top.current_share:.1%} of messages, was {top.reference_share:.1%} {distance}"
        )
    if predictions.shrank:
        top = predictions.shrank[0]
        return (
            f"customers ask about {plain_intent(top.intent)} less than before: "
            f"{top.current_share:.1%} of messages, was {top.reference_share:.1%} {distance}"
        )
    return f"the mix of requests changed {distance}"


def _mean_change(
    column: str, means: Mapping[str, Mapping[str, float]]
) -> tuple[float, float] | None:
    """The column's mean in the window and on the reference, when the report measured both."""
    current, reference = means.get("current", {}), means.get("reference", {})
    if column in current and column in reference:
        return current[column], reference[column]
    return None


# What a drifted column means to a reader, by direction of its mean (None: no direction).
_COLUMN_WORDS = {
    "length": ("messages are longer than before", "messages are shorter than before"),
    "word_count": ("messages have more words than before", "messages have fewer words than before"),
    "polarity": (
        "customers sound more positive than before",
        "customers sound more negative than before",
    ),
}
_COLUMN_PHRASES = {
    "text": "customers word their messages differently: a classifier tells this window's "
    "messages from the test data's",
    "predicted_intent": "the requests the bot recognises are spread differently",
    "confidence": "how sure the bot is of its answers changed",
    "fallback": "how often the bot says it is unsure changed",
}


def column_reason(
    column: ColumnDrift, means: Mapping[str, Mapping[str, float]] | None = None
) -> str:
    """A drifted column in words, with its test's score and threshold beside them."""
    measure = "ROC AUC" if column.column == "text" else "distance"
    numbers = f"({measure} {column.score:.3g}, threshold {column.threshold:.3g})"
    change = _mean_change(column.column, means or {})
    if column.column in _COLUMN_WORDS and change is not None:
        more, less = _COLUMN_WORDS[column.column]
        now, was = change
        return f"{more if now >= was else less}: {now:.3g} on average, was {was:.3g} {numbers}"
    phrase = _COLUMN_PHRASES.get(column.column, f"the distribution of {column.column} changed")
    return f"{phrase} {numbers}"


def verdict(
    rules: DriftRules,
    messages: int,
    drifted_columns: Sequence[ColumnDrift],
    predictions: PredictionDrift,
    performance: LabelPerformance,
    reference_accuracy: float | None,
    descriptor_means: Mapping[str, Mapping[str, float]] | None = None,
) -> tuple[Verdict, list[str]]:
    """`degraded`, `insufficient_data`, `drift` or `ok`, with the reasons in plain words.

    Enough labels showing wrong answers are evidence however few messages came in, so
    `degraded` is judged first; otherwise too few messages are their own verdict. Each reason
    says what changed in a support manager's words, the figures beside it.
    """
    accuracy = performance.accuracy
    if performance.judged and accuracy is not None and reference_accuracy is not None:
        floor = reference_accuracy - rules.max_accuracy_drop
        if accuracy < floor:
            return Verdict.DEGRADED, [
                f"the bot answered {accuracy:.1%} of {performance.labels} messages that agents "
                f"or customers labelled right, below {floor:.1%} (its test accuracy "
                f"{reference_accuracy:.1%} minus {rules.max_accuracy_drop:.0%})"
            ]
    if messages < rules.min_messages:
        return Verdict.INSUFFICIENT_DATA, [too_few_messages(messages, rules.min_messages)]
    reasons = [column_reason(column, descriptor_means) for column in drifted_columns]
    # Past the configured threshold and past what chance alone moves a window this size.
    js_threshold = max(rules.intent_js_threshold, predictions.intent_js_floor)
    if predictions.intent_js_distance >= js_threshold:
        reasons.insert(0, _mix_reason(predictions, js_threshold))
    # `current` is None only for an empty window, which min_messages has turned away above.
    fallback = predictions.fallback_rate
    if (
        fallback.current is not None
        and fallback.current - fallback.reference >= rules.fallback_rate_increase
    ):
        reasons.append(
            f"the bot was unsure more often: fallback rate {fallback.current:.1%} of "
            f"messages, was {fallback.reference:.1%} on its held-out test data"
        )
    confidence = predictions.mean_confidence
    if (
        confidence.current is not None
        and confidence.reference - confidence.current >= rules.confidence_drop
    ):
        reasons.append(
            f"the bot is less sure of its answers: mean confidence {confidence.current:.2f}, "
            f"was {confidence.reference:.2f}"
        )
    return (Verdict.DRIFT if reasons else Verdict.OK), reasons

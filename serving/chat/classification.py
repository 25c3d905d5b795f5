"""What the bot needs from the intent model, read once from the prediction document.

The model answers either in-process (the service's micro-batcher) or over HTTP
(`CHAT_INTENT_URL`); both give the documented `/predict` document. The bot reads it here, at the
edge, into a `Classification`; nothing further in the chat tier indexes into the document.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from typing import Any

# text, the model's context (serving/chat/history.py) → the prediction document.
Classify = Callable[[str, dict[str, Any] | None], Awaitable[Mapping[str, Any]]]


class MalformedPrediction(ValueError):
    """A prediction document without the fields the bot needs."""


@dataclass(frozen=True)
class Classification:
    """The model's answer for one customer message."""

    intent: str
    confidence: float
    fallback: bool
    model_name: str
    model_version: str
    # TextBlob sentiment: the in-process document carries it; a remote one may not.
    polarity: float | None = None
    subjectivity: float | None = None
    # The model's best candidates, best first: the agent console's label suggestions.
    top_k: tuple[tuple[str, float], ...] = ()

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> Classification:
        """Read a `/predict` document; MalformedPrediction names what is missing."""
        try:
            model = document["model"]
            sentiment = document.get("sentiment") or {}
            return cls(
                intent=str(document["intent"]),
                confidence=float(document["confidence"]),
                fallback=bool(document["fallback"]),
                model_name=str(model["name"]),
                model_version=str(model["version"]),
                polarity=_number(sentiment.get("polarity")),
                subjectivity=_number(sentiment.get("subjectivity")),
                top_k=tuple(
                    (str(ranked["intent"]), float(ranked["confidence"]))
                    for ranked in document.get("top_k") or ()
                ),
            )
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise MalformedPrediction(f"prediction document lacks {exc}") from exc


def _number(value: Any) -> float | None:
    return None if value is None else float(value)

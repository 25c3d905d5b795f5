"""Typed prediction records and the JSON document each becomes on the wire.

`IntentInference.predict` returns `IntentPrediction`s; `to_document()` gives exactly the shape
`/predict` answers with (key order included), so serving, the chat tier, monitoring and the
benchmarks all publish one document built in one place. Figures are rounded when the record is
made (confidences to 6 decimals, sentiment to 4): the record, the wire document and what the
conversation store keeps are then the same numbers.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import NotRequired, TypedDict

CONFIDENCE_DECIMALS = 6
SENTIMENT_DECIMALS = 4


class RankedIntentDocument(TypedDict):
    """One entry of `top_k` on the wire."""

    intent: str
    confidence: float


class SentimentDocument(TypedDict):
    """`sentiment` on the wire."""

    polarity: float
    subjectivity: float


class ModelDocument(TypedDict):
    """`model` on the wire: which registered version answered."""

    name: str
    version: str


class PredictionDocument(TypedDict):
    """One prediction on the wire; `model` only where the caller names the version."""

    intent: str
    confidence: float
    fallback: bool
    top_k: list[RankedIntentDocument]
    sentiment: SentimentDocument
    model: NotRequired[ModelDocument]


@dataclass(frozen=True)
class RankedIntent:
    """A candidate intent and the model's confidence in it."""

    intent: str
    confidence: float

    def to_document(self) -> RankedIntentDocument:
        """The `top_k` entry."""
        return {"intent": self.intent, "confidence": self.confidence}


@dataclass(frozen=True)
class Sentiment:
    """TextBlob polarity in [-1, 1] and subjectivity in [0, 1]."""

    polarity: float
    subjectivity: float

    def to_document(self) -> SentimentDocument:
        """The `sentiment` object."""
        return {"polarity": self.polarity, "subjectivity": self.subjectivity}


@dataclass(frozen=True)
class ModelRef:
    """A registered model version by name and number."""

    name: str
    version: str

    def to_document(self) -> ModelDocument:
        """The `model` object."""
        return {"name": self.name, "version": self.version}


@dataclass(frozen=True)
class IntentPrediction:
    """The answer for one message.

    `intent` is `nlu_fallback` when `fallback` is set (the version's policy was not met);
    `top_k` still lists the model's candidates, best first, and `confidence` is the first one's.
    """

    intent: str
    confidence: float
    fallback: bool
    top_k: tuple[RankedIntent, ...]
    sentiment: Sentiment

    def to_document(self, model: ModelRef | None = None) -> PredictionDocument:
        """The JSON document `/predict` answers with (plus `model` when given)."""
        document: PredictionDocument = {
            "intent": self.intent,
            "confidence": self.confidence,
            "fallback": self.fallback,
            "top_k": [ranked.to_document() for ranked in self.top_k],
            "sentiment": self.sentiment.to_document(),
        }
        if model is not None:
            document["model"] = model.to_document()
        return document

"""Monitoring figures and the verdict: pure functions over plain DataFrames, no I/O."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any

import numpy as np
import pandas as pd
from scipy.spatial.distance import jensenshannon
from sklearn.metrics import accuracy_score, f1_score

EPSILON = 1e-6


def distribution(values: pd.Series, categories: Sequence[str]) -> np.ndarray:
    """Share of each category (0 for absent ones)."""
    counts = values.value_counts()
    vector = np.array([counts.get(category, 0) for category in categories], dtype=float)
    total = vector.sum()
    return vector / total if total else vector


def psi(reference: np.ndarray, current: np.ndarray) -> float:
    """Population stability index of two share vectors."""
    ref, cur = np.clip(reference, EPSILON, None), np.clip(current, EPSILON, None)
    return float(np.sum((cur - ref) * np.log(cur / ref)))


class Verdict(StrEnum):
    """What a monitoring run concluded."""

    OK = "ok"
    DRIFT = "drift"
    DEGRADED = "degraded"
    # Fewer messages than MONITORING_MIN_MESSAGES: nothing was judged, never shown as all clear.
    INSUFFICIENT_DATA = "insufficient_data"


@dataclass(frozen=True)
class IntentShift:
    """How an intent's share of traffic moved (shares and change rounded to 4 places)."""

    intent: str
    reference_share: float
    current_share: float
    change: float

    @classmethod
    def between(cls, intent: str, reference_share: float, current_share: float) -> IntentShift:
        """The shift from one share to the other, rounded as reports show it."""
        return cls(
            intent,
            round(reference_share, 4),
            round(current_share, 4),
            round(current_share - reference_share, 4),
        )

    def to_dict(self) -> dict[str, object]:
        """As summary.json holds it."""
        return asdict(self)


@dataclass(frozen=True)
class RateChange:
    """A rate on the reference data and in the window (None: no messages in the window)."""

    reference: float
    current: float | None

    def to_dict(self) -> dict[str, object]:
        """As summary.json holds it."""
        return asdict(self)


@dataclass(frozen=True)
class PredictionDrift:
    """How the served predictions moved against the reference."""

    intent_js_distance: float
    intent_psi: float
    fallback_rate: RateChange
    mean_confidence: RateChange
    grew: tuple[IntentShift, ...]
    shrank: tuple[IntentShift, ...]
    # The distance two samples of these sizes from the reference's own mix reach by chance
    # (95th percentile): below it a moved mix is noise, however low the configured threshold.
    intent_js_floor: float = 0.0

    def to_dict(self) -> dict[str, object]:
        """As summary.json holds it."""
        return {
            "intent_js_distance": self.intent_js_distance,
            "intent_js_floor": self.intent_js_floor,
            "intent_psi": self.intent_psi,
            "fallback_rate": self.fallback_rate.to_dict(),
            "mean_confidence": self.mean_confidence.to_dict(),
            "grew": [shift.to_dict() for shift in self.grew],
            "shrank": [shift.to_dict() for shift in self.shrank],
        }


def js_noise_floor(
    shares: np.ndarray, reference_rows: int, current_rows: int, draws: int = 200, seed: int = 0
) -> float:
    """The 95th percentile of the Jensen-Shannon distance between two samples of these sizes
    drawn from the same mix `shares`: how far a window's intent mix moves by chance alone.

    With 77 intents, 150 messages from an unchanged mix sit ~0.3 from the reference, far past a
    0.1 threshold; tens of thousands sit below it. Seeded: the same inputs, the same floor.
    """
    if not reference_rows or not current_rows or not shares.sum():
        return 0.0
    rng = np.random.default_rng(seed)
    left = rng.multinomial(reference_rows, shares, size=draws) / reference_rows
    right = rng.multinomial(current_rows, shares, size=draws) / current_rows
    distances = jensenshannon(left, right, base=2, axis=1)
    return round(float(np.quantile(distances, 0.95)), 4)


def _mean(values: pd.Series, digits: int = 4) -> float | None:
    return round(float(values.mean()), digits) if len(values) else None


def prediction_drift(
    reference: pd.DataFrame, current: pd.DataFrame, top: int = 5
) -> PredictionDrift:
    """Intent distribution (Jensen-Shannon distance, PSI), fallback rate and mean confidence."""
    intents = sorted(set(reference["predicted_intent"]) | set(current["predicted_intent"]))
    ref_share = distribution(reference["predicted_intent"], intents)
    cur_share = distribution(current["predicted_intent"], intents)
    # Ordered and filtered on the exact change; the records keep it rounded.
    moves = sorted(
        ((i, float(r), float(c)) for i, r, c in zip(intents, ref_share, cur_share, strict=True)),
        key=lambda move: move[2] - move[1],
    )
    grew = [IntentShift.between(*m) for m in reversed(moves[-top:]) if m[2] - m[1] > 0]
    shrank = [IntentShift.between(*m) for m in moves[:top] if m[2] - m[1] < 0]
    return PredictionDrift(
        intent_js_distance=round(float(jensenshannon(ref_share, cur_share, base=2)), 4)
        if len(current)
        else 0.0,
        intent_psi=round(psi(ref_share, cur_share), 4) if len(current) else 0.0,
        fallback_rate=RateChange(
            round(float(reference["fallback"].mean()), 4), _mean(current["fallback"])
        ),
        mean_confidence=RateChange(
            round(float(reference["confidence"].mean()), 4), _mean(current["confidence"])
        ),
        grew=tuple(grew),
        shrank=tuple(shrank),
        intent_js_floor=js_noise_floor(ref_share, len(reference), len(current)),
    )


@dataclass(frozen=True)
class LabelPerformance:
    """The served predictions against the window's labels (judged once there are enough)."""

    labels: int
    min_labels: int
    judged: bool = False
    accuracy: float | None = None
    macro_f1: float | None = None
    per_intent_f1: dict[str, float] = field(default_factory=dict)
    by_source: dict[str, int] = field(default_factory=dict)

    def to_dict(self) -> dict[str, object]:
        """As summary.json holds it: the scores only when judged."""
        document: dict[str, object] = {
            "labels": self.labels,
            "min_labels": self.min_labels,
            "judged": self.judged,
        }
        if self.judged:
            document |= {
                "accuracy": self.accuracy,
                "macro_f1": self.macro_f1,
                "per_intent_f1": dict(self.per_intent_f1),
                "by_source": dict(self.by_source),
            }
        return document


def label_performance(labels: pd.DataFrame, min_labels: int) -> LabelPerformance:
    """Accuracy, macro-F1 and per-intent F1 of the served predictions against labels."""
    usable = labels.dropna(subset=["intent", "predicted_intent"]) if len(labels) else labels
    if len(usable) < min_labels:
        return LabelPerformance(len(usable), min_labels)
    true, predicted = usable["intent"].astype(str), usable["predicted_intent"].astype(str)
    per_intent = f1_score(true, predicted, labels=sorted(set(true)), average=None, zero_division=0)
    return LabelPerformance(
        labels=len(usable),
        min_labels=min_labels,
        judged=True,
        accuracy=round(float(accuracy_score(true, predicted)), 4),
        macro_f1=round(float(f1_score(true, predicted, average="macro", zero_division=0)), 4),
        per_intent_f1={
            intent: round(float(score), 4)
            for intent, score in zip(sorted(set(true)), per_intent, strict=True)
        },
        by_source={
            str(source): int(count)
            for source, count in usable["label_source"].value_counts().items()
        },
    )


# The rates that exist only when the window holds support conversations.
_REQUEST_KPIS = ("containment_rate", "escalation_rate", "resolution_rate", "mean_rating")


@dataclass(frozen=True)
class SupportKpis:
    """The design document's success metrics that the store can compute (None: no data)."""

    conversations: int
    conversations_per_day: float | None = None
    fallback_rate: float | None = None
    mean_sentiment: float | None = None
    containment_rate: float | None = None
    escalation_rate: float | None = None
    resolution_rate: float | None = None
    mean_rating: float | None = None

    def to_dict(self) -> dict[str, object]:
        """As summary.json holds it: the request rates only when there were conversations."""
        document = asdict(self)
        if not self.conversations:
            for name in _REQUEST_KPIS:
                del document[name]
        return document

    @classmethod
    def from_dict(cls, document: Mapping[str, Any]) -> SupportKpis:
        """An earlier run's KPIs as its summary.json holds them (absent figures are None)."""
        optional = {f.name: document.get(f.name) for f in fields(cls) if f.name != "conversations"}
        return cls(conversations=int(document.get("conversations") or 0), **optional)


def support_kpis(requests: pd.DataFrame, messages: pd.DataFrame, window_days: float) -> SupportKpis:
    """The design document's success metrics that the store can compute."""
    total = len(requests)
    kpis = SupportKpis(
        conversations=total,
        conversations_per_day=round(total / window_days, 2) if window_days else None,
        fallback_rate=round(float(messages["fallback"].mean()), 4) if len(messages) else None,
        mean_sentiment=round(float(messages["polarity"].mean()), 4)
        if len(messages) and messages["polarity"].notna().any()
        else None,
    )
    if not total:
        return kpis
    handed_off = requests["handed_off_at"].notna()
    ratings = requests["rating"].dropna()
    return replace(
        kpis,
        containment_rate=round(float((~handed_off).mean()), 4),
        escalation_rate=round(float(handed_off.mean()), 4),
        resolution_rate=round(float((requests["status"] == "resolved").mean()), 4),
        mean_rating=round(float(ratings.mean()), 2) if len(ratings) else None,
    )

"""Monitoring figures and the verdict: pure functions over plain DataFrames, no I/O."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
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


@dataclass(frozen=True)
class IntentShift:
    """How an intent's share of traffic moved."""

    intent: str
    reference_share: float
    current_share: float

    @property
    def change(self) -> float:
        """Current minus reference share."""
        return self.current_share - self.reference_share


def prediction_drift(
    reference: pd.DataFrame, current: pd.DataFrame, top: int = 5
) -> dict[str, Any]:
    """Intent distribution (Jensen-Shannon distance, PSI), fallback rate and mean confidence."""
    intents = sorted(set(reference["predicted_intent"]) | set(current["predicted_intent"]))
    ref_share = distribution(reference["predicted_intent"], intents)
    cur_share = distribution(current["predicted_intent"], intents)
    shifts = sorted(
        (
            IntentShift(i, float(r), float(c))
            for i, r, c in zip(intents, ref_share, cur_share, strict=True)
        ),
        key=lambda shift: shift.change,
    )
    as_dict = lambda s: {  # noqa: E731
        "intent": s.intent,
        "reference_share": round(s.reference_share, 4),
        "current_share": round(s.current_share, 4),
        "change": round(s.change, 4),
    }
    return {
        "intent_js_distance": round(float(jensenshannon(ref_share, cur_share, base=2)), 4)
        if len(current)
        else 0.0,
        "intent_psi": round(psi(ref_share, cur_share), 4) if len(current) else 0.0,
        "fallback_rate": {
            "reference": round(float(reference["fallback"].mean()), 4),
            "current": round(float(current["fallback"].mean()), 4) if len(current) else None,
        },
        "mean_confidence": {
            "reference": round(float(reference["confidence"].mean()), 4),
            "current": round(float(current["confidence"].mean()), 4) if len(current) else None,
        },
        "grew": [as_dict(s) for s in reversed(shifts[-top:]) if s.change > 0],
        "shrank": [as_dict(s) for s in shifts[:top] if s.change < 0],
    }


def label_performance(labels: pd.DataFrame, min_labels: int) -> dict[str, Any]:
    """Accuracy, macro-F1 and per-intent F1 of the served predictions against labels."""
    usable = labels.dropna(subset=["intent", "predicted_intent"]) if len(labels) else labels
    result: dict[str, Any] = {"labels": len(usable), "min_labels": min_labels}
    if len(usable) < min_labels:
        result["judged"] = False
        return result
    true, predicted = usable["intent"].astype(str), usable["predicted_intent"].astype(str)
    per_intent = f1_score(true, predicted, labels=sorted(set(true)), average=None, zero_division=0)
    result |= {
        "judged": True,
        "accuracy": round(float(accuracy_score(true, predicted)), 4),
        "macro_f1": round(float(f1_score(true, predicted, average="macro", zero_division=0)), 4),
        "per_intent_f1": {
            intent: round(float(score), 4)
            for intent, score in zip(sorted(set(true)), per_intent, strict=True)
        },
        "by_source": usable["label_source"].value_counts().to_dict(),
    }
    return result


def support_kpis(
    requests: pd.DataFrame, messages: pd.DataFrame, window_days: float
) -> dict[str, Any]:
    """The design document's success metrics that the store can compute."""
    total = len(requests)
    kpis: dict[str, Any] = {
        "conversations": total,
        "conversations_per_day": round(total / window_days, 2) if window_days else None,
        "fallback_rate": round(float(messages["fallback"].mean()), 4) if len(messages) else None,
        "mean_sentiment": round(float(messages["polarity"].mean()), 4)
        if len(messages) and messages["polarity"].notna().any()
        else None,
    }
    if total:
        handed_off = requests["handed_off_at"].notna()
        resolved = requests["status"] == "resolved"
        ratings = requests["rating"].dropna()
        kpis |= {
            "containment_rate": round(float((~handed_off).mean()), 4),
            "escalation_rate": round(float(handed_off.mean()), 4),
            "resolution_rate": round(float(resolved.mean()), 4),
            "mean_rating": round(float(ratings.mean()), 2) if len(ratings) else None,
        }
    return kpis


@dataclass(frozen=True)
class DriftRules:
    """Thresholds of the verdict."""

    intent_js_threshold: float = 0.1
    fallback_rate_increase: float = 0.05
    confidence_drop: float = 0.05
    max_accuracy_drop: float = 0.05
    min_messages: int = 30


def verdict(
    rules: DriftRules,
    messages: int,
    drifted_columns: Sequence[str],
    predictions: dict[str, Any],
    performance: dict[str, Any],
    reference_accuracy: float | None,
) -> tuple[str, list[str]]:
    """`ok`, `drift` or `degraded`, with the reasons in plain words."""
    reasons: list[str] = []
    if performance.get("judged") and reference_accuracy is not None:
        floor = reference_accuracy - rules.max_accuracy_drop
        if performance["accuracy"] < floor:
            reasons.append(
                f"accuracy on {performance['labels']} recent labels is "
                f"{performance['accuracy']:.1%}, below {floor:.1%} (the model's test accuracy "
                f"{reference_accuracy:.1%} minus {rules.max_accuracy_drop:.0%})"
            )
            return "degraded", reasons
    if messages < rules.min_messages:
        return "ok", [f"only {messages} messages in the window: too few to judge drift"]
    if drifted_columns:
        reasons.append("the distribution changed for: " + ", ".join(drifted_columns))
    if predictions["intent_js_distance"] >= rules.intent_js_threshold:
        reasons.append(
            f"the mix of predicted intents moved (Jensen-Shannon distance "
            f"{predictions['intent_js_distance']:.3f} ≥ {rules.intent_js_threshold})"
        )
    fallback = predictions["fallback_rate"]
    if fallback["current"] - fallback["reference"] >= rules.fallback_rate_increase:
        reasons.append(
            f"the bot was unsure more often: fallback rate {fallback['current']:.1%} "
            f"against {fallback['reference']:.1%} on the model's held-out test data"
        )
    confidence = predictions["mean_confidence"]
    if confidence["reference"] - confidence["current"] >= rules.confidence_drop:
        reasons.append(
            f"mean confidence fell to {confidence['current']:.2f} "
            f"from {confidence['reference']:.2f}"
        )
    return ("drift" if reasons else "ok"), reasons

"""The intent service's Prometheus counters: answers by intent, fallbacks and hot swaps.

BentoML's /metrics exposes them (serving/README.md). serving/metrics_dir.py gives each server
a multiprocess directory of its own, so the figures are this server's, summed over its workers.
"""

from __future__ import annotations

from collections.abc import Sequence

from models.predictions import PredictionDocument
from serving.prometheus_metrics import LazyCounter

predictions_total = LazyCounter(
    "intent_predictions_total",
    "Predictions answered, by predicted intent (nlu_fallback included).",
    ("intent",),
)
fallbacks_total = LazyCounter(
    "intent_fallbacks_total", "Predictions that fell back to nlu_fallback."
)
swaps_total = LazyCounter("intent_model_swaps_total", "Hot swaps to a new model version.")


def count_answers(documents: Sequence[PredictionDocument]) -> None:
    """Count each answer under its intent, and the fallbacks among them."""
    for document in documents:
        predictions_total.labels(intent=document["intent"]).inc()
        if document["fallback"]:
            fallbacks_total.inc()


def count_swap() -> None:
    """Count one hot swap to a new model version."""
    swaps_total.inc()

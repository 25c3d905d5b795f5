"""The HTTP tier's part of a prediction: naming the version that answered each request.

Turning probabilities into intents, fallbacks and documents is `models/` (`IntentInference`,
`models/predictions.py`). What is left here is serving's: a micro-batch may span a hot swap,
so its requests are grouped by the version each one started with, and every document names it.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, NotRequired

from models.predictions import PredictionDocument
from serving.model_holder import ServedModel


class ServedPrediction(PredictionDocument):
    """A `/predict` answer: the model's document, its `model`, and the time it took."""

    processing_ms: NotRequired[float]


def predict_grouped(
    requests: Sequence[tuple[ServedModel, str, Mapping[str, Any] | None]], top_k: int
) -> list[ServedPrediction]:
    """Predict a micro-batch whose requests may name different model versions (during a swap)."""
    groups: dict[int, list[int]] = {}
    for position, (model, _, _) in enumerate(requests):
        groups.setdefault(id(model), []).append(position)
    results: dict[int, ServedPrediction] = {}
    for positions in groups.values():
        model = requests[positions[0]][0]
        predictions = model.inference.predict(
            [requests[p][1] for p in positions], [requests[p][2] for p in positions], top_k
        )
        for position, prediction in zip(positions, predictions, strict=True):
            results[position] = ServedPrediction(**prediction.to_document(model.ref))
    return [results[position] for position in range(len(requests))]

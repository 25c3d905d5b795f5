"""Turning probabilities into the documented prediction documents."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from features.sentiment import sentiment
from models.fallback import FALLBACK_INTENT
from serving.model_holder import ServedModel


def predict_documents(
    model: ServedModel,
    texts: Sequence[str],
    contexts: Sequence[Mapping[str, Any] | None] | None,
    top_k: int,
) -> list[dict[str, Any]]:
    """One prediction document per text: intent (or nlu_fallback), confidence, top-k, sentiment."""
    inference = model.inference
    probabilities = inference.predict_proba(texts, contexts)
    indices, scores = inference.top_k(probabilities, top_k)
    fallback = inference.fallback.is_fallback(probabilities)
    polarity = sentiment(list(texts))
    names = inference.classes[indices]
    documents = []
    for row in range(len(texts)):
        top = [
            {"intent": str(names[row, i]), "confidence": round(float(scores[row, i]), 6)}
            for i in range(indices.shape[1])
        ]
        documents.append(
            {
                "intent": FALLBACK_INTENT if fallback[row] else top[0]["intent"],
                "confidence": top[0]["confidence"],
                "fallback": bool(fallback[row]),
                "top_k": top,
                "sentiment": {
                    "polarity": round(float(polarity[row, 0]), 4),
                    "subjectivity": round(float(polarity[row, 1]), 4),
                },
            }
        )
    return documents


def predict_grouped(
    requests: Sequence[tuple[ServedModel, str, Mapping[str, Any] | None]], top_k: int
) -> list[dict[str, Any]]:
    """Predict a micro-batch whose requests may name different model versions (during a swap)."""
    results: list[dict[str, Any]] = [{} for _ in requests]
    groups: dict[int, list[int]] = {}
    for position, (model, _, _) in enumerate(requests):
        groups.setdefault(id(model), []).append(position)
    for positions in groups.values():
        model = requests[positions[0]][0]
        documents = predict_documents(
            model,
            [requests[p][1] for p in positions],
            [requests[p][2] for p in positions],
            top_k,
        )
        for position, document in zip(positions, documents, strict=True):
            document["model"] = {"name": model.name, "version": model.version}
            results[position] = document
    return results

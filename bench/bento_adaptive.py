"""BentoML's own adaptive batching around the same model, for comparison in bench/serve.py.

Batchable APIs take a list per request (`{"texts": [...]}`) and BentoML merges requests within a
`max_latency_ms` window. Settings from the notes: max_batch_size 64, max_latency_ms 1000 (lower
windows answered 503 "process is overloaded" under load).
"""

from __future__ import annotations

import os
from typing import Any

import bentoml

from models.fallback import FallbackPolicy
from models.inference import IntentInference
from models.registry import IntentRegistry, RegistryConfig


@bentoml.service(name="adaptive_batching_bench", workers=1, logging={"access": {"enabled": False}})
class AdaptiveBatching:
    """One batchable endpoint: texts in, top intent per text out."""

    def __init__(self) -> None:
        registry = IntentRegistry(RegistryConfig(os.environ["BENCH_MLFLOW_TRACKING_URI"]))
        version = registry.version_by_alias("champion").version
        self.inference = IntentInference(registry.load_pipeline(version), FallbackPolicy(0, 0))

    @bentoml.api(batchable=True, max_batch_size=64, max_latency_ms=1000)
    def predict(self, texts: list[str]) -> list[dict[str, Any]]:
        """Classify a merged batch."""
        probabilities = self.inference.predict_proba(texts)
        indices, scores = self.inference.top_k(probabilities, 5)
        names = self.inference.classes[indices]
        return [
            {"intent": str(names[row, 0]), "confidence": float(scores[row, 0])}
            for row in range(len(texts))
        ]

"""Comparison servers for bench/serve.py, each around the same registered model.

- `bare_app`: a raw ASGI app returning a constant (the HTTP ceiling of one worker).
- `lean_app`: what a user would write with FastAPI: one predict_proba, vectorised label lookup.
- `design_app`: the design document's endpoint: predict + predict_proba on a DataFrame and one
  LabelEncoder.inverse_transform per class, per request.
"""

from __future__ import annotations

import os
from functools import cache
from typing import Any

import numpy as np
import orjson
import pandas as pd
from fastapi import FastAPI
from fastapi.responses import ORJSONResponse
from pydantic import BaseModel
from sklearn.preprocessing import LabelEncoder

from models.fallback import FallbackPolicy
from models.inference import IntentInference
from models.registry import IntentRegistry, RegistryConfig


@cache
def _pipeline() -> Any:
    registry = IntentRegistry(RegistryConfig(os.environ["BENCH_MLFLOW_TRACKING_URI"]))
    version = registry.version_by_alias("champion")
    return registry.load_pipeline(version.version)


async def bare_app(scope: dict, receive: Any, send: Any) -> None:
    """Constant JSON for every HTTP request."""
    if scope["type"] != "http":
        return
    body = b'{"intent":"card_arrival","confidence":1.0}'
    while (await receive()).get("more_body"):
        pass
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", b"%d" % len(body)),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class Message(BaseModel):
    """Request body."""

    text: str


lean_app = FastAPI()


@lean_app.on_event("startup")
def _load_lean() -> None:
    lean_app.state.inference = IntentInference(_pipeline(), FallbackPolicy(0.0, 0.0))


@lean_app.post("/predict", response_class=ORJSONResponse)
def lean_predict(message: Message) -> ORJSONResponse:
    """One predict_proba, vectorised top-5 label lookup."""
    inference: IntentInference = lean_app.state.inference
    probabilities = inference.predict_proba([message.text])
    indices, scores = inference.top_k(probabilities, 5)
    names = inference.classes[indices[0]]
    return ORJSONResponse(
        {
            "intent": names[0],
            "confidence": float(scores[0, 0]),
            "top_k": [
                {"intent": n, "confidence": float(s)} for n, s in zip(names, scores[0], strict=True)
            ],
        }
    )


design_app = FastAPI()


@design_app.on_event("startup")
def _load_design() -> None:
    pipeline = _pipeline()
    encoder = LabelEncoder().fit(pipeline.classes_)
    design_app.state.model = pipeline
    design_app.state.encoder = encoder


@design_app.post("/predict")
def design_predict(message: Message) -> dict[str, Any]:
    """The design document's inference path, kept as written (async-free, per-class decoding)."""
    model, encoder = design_app.state.model, design_app.state.encoder
    frame = pd.DataFrame({"text": [message.text]})
    prediction = model.predict(frame)[0]
    probabilities = model.predict_proba(frame)[0]
    index = int(np.flatnonzero(model.classes_ == prediction)[0])
    intent = encoder.inverse_transform([index])[0]
    all_probabilities = {
        encoder.inverse_transform([i])[0]: float(p) for i, p in enumerate(probabilities)
    }
    return {
        "intent": intent,
        "confidence": all_probabilities[intent],
        "all_probabilities": all_probabilities,
    }


__all__ = ["bare_app", "design_app", "lean_app", "orjson"]

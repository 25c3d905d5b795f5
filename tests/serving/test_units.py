"""Pure parts of serving: token buckets, the micro-batcher, the fast inference path."""

from __future__ import annotations

import asyncio

import httpx
import numpy as np
import pandas as pd
import pytest
from starlette.applications import Starlette
from starlette.responses import JSONResponse
from starlette.routing import Route

from models.candidates import resolve
from models.fallback import FallbackPolicy
from models.inference import IntentInference
from serving.batcher import MicroBatcher
from serving.ratelimit import RateLimitMiddleware, TokenBuckets


def test_token_bucket_allows_a_burst_then_paces():
    now = [0.0]
    buckets = TokenBuckets(rate=2.0, burst=3, clock=lambda: now[0])
    assert [buckets.acquire("a") for _ in range(3)] == [0.0, 0.0, 0.0]
    assert buckets.acquire("a") == pytest.approx(0.5)
    assert buckets.acquire("b") == 0.0  # per client
    now[0] += 0.5
    assert buckets.acquire("a") == 0.0


def test_rate_limit_middleware_answers_429_with_retry_after():
    async def ok(request):
        return JSONResponse({"ok": True})

    app = RateLimitMiddleware(Starlette(routes=[Route("/predict", ok, methods=["POST"])]), 1.0, 2)

    async def run() -> list[httpx.Response]:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [await client.post("/predict", headers={"x-client-id": "c1"}) for _ in range(3)]

    responses = asyncio.run(run())
    assert [r.status_code for r in responses] == [200, 200, 429]
    assert responses[2].headers["retry-after"] == "1"
    assert "rate limit" in responses[2].json()["error"]


def test_micro_batcher_batches_concurrent_requests_and_keeps_order():
    seen: list[int] = []

    def run_batch(items):
        seen.append(len(items))
        return [item * 10 for item in items]

    async def run():
        batcher = MicroBatcher(run_batch, max_batch=4)
        results = await asyncio.gather(*(batcher.submit(i) for i in range(10)))
        return results, batcher.stats()

    results, stats = asyncio.run(run())
    assert results == [i * 10 for i in range(10)]
    assert max(seen) == 4 and sum(seen) == 10 and stats["batches"] == len(seen)


def test_micro_batcher_fails_every_waiter_when_the_batch_fails():
    def run_batch(items):
        raise RuntimeError("model exploded")

    async def run():
        batcher = MicroBatcher(run_batch)
        return await asyncio.gather(*(batcher.submit(i) for i in range(3)), return_exceptions=True)

    assert all(isinstance(r, RuntimeError) for r in asyncio.run(run()))


def test_fast_inference_path_equals_the_pipeline(small_slice):
    frame = small_slice.rename(columns={"category": "intent"}).assign(context="{}")
    for name in ("tfidf_logreg", "tfidf_linearsvc_calibrated"):
        pipeline = resolve([name])[0].build().fit(frame[["text", "context"]], frame["intent"])
        inference = IntentInference(pipeline, FallbackPolicy(0.5, 0.1))
        assert inference.uses_fast_path
        texts = ["where is my card", "I want to activate it", "zzz"]
        expected = pipeline.predict_proba(pd.DataFrame({"text": texts, "context": "{}"}))
        np.testing.assert_allclose(inference.predict_proba(texts), expected, rtol=0, atol=1e-12)
        indices, scores = inference.top_k(expected, 3)
        np.testing.assert_array_equal(indices[:, 0], expected.argmax(axis=1))
        assert (np.diff(scores, axis=1) <= 0).all()

"""The HTTP rate limit holds across workers when they share it through a real `redis-server`.

In memory every worker counts on its own: two workers let through twice the burst. With
SERVING_RATE_LIMIT_REDIS_URL (or CHAT_BROKER_URL) the count is Redis's, one for everyone.
"""

from __future__ import annotations

import asyncio
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serving.ratelimit import RateLimitMiddleware
from serving.shared_ratelimit import SharedWindows, Window
from tests.serving.conftest import ServiceProcess, free_port, service_env

BURST = 5
# One request per 10 s in the long run: nothing refills while a test runs.
RATE = 0.1


async def _ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def test_a_token_bucket_becomes_a_window_with_its_burst_and_long_run_rate():
    assert Window.of(rate=0.1, burst=5) == Window(5, 50)
    assert Window.of(rate=5.0, burst=20) == Window(20, 4)
    assert Window.of(rate=100.0, burst=20) == Window(100, 1)  # at least one whole second


def test_two_workers_share_one_limit_through_redis(redis_url: str):
    app = Starlette(routes=[Route("/predict", _ok, methods=["POST"])])
    # Two middleware stacks are two workers: nothing is shared between them but Redis.
    workers = [RateLimitMiddleware(app, RATE, BURST, redis_url=redis_url) for _ in range(2)]

    async def run() -> list[httpx.Response]:
        clients = [
            httpx.AsyncClient(transport=httpx.ASGITransport(app=worker), base_url="http://test")
            for worker in workers
        ]
        try:
            return [
                await clients[number % 2].post("/predict", headers={"x-client-id": "shared-1"})
                for number in range(4 * BURST)
            ]
        finally:
            for client in clients:
                await client.aclose()

    responses = asyncio.run(run())
    assert Counter(response.status_code for response in responses) == {
        200: BURST,
        429: 3 * BURST,
    }
    refused = next(response for response in responses if response.status_code == 429)
    assert 0 < int(refused.headers["retry-after"]) <= Window.of(RATE, BURST).seconds


def test_an_unreachable_redis_lets_requests_through(caplog):
    windows = SharedWindows(f"redis://127.0.0.1:{free_port()}/0", RATE, BURST)

    async def run() -> list[float]:
        return [await windows.acquire("client") for _ in range(2 * BURST)]

    assert asyncio.run(run()) == [0.0] * (2 * BURST)
    # Logged once, not once per request.
    assert sum("Redis unavailable" in record.message for record in caplog.records) == 1


@pytest.mark.slow
def test_bentoml_serve_with_two_workers_holds_the_limit_across_them(
    serving_registry: dict, redis_url: str, tmp_path: Path
):
    env = service_env(
        serving_registry,
        "ratelimit.db",
        SERVING_WORKERS="2",
        SERVING_RATE_LIMIT_PER_S=str(RATE),
        SERVING_RATE_LIMIT_BURST=str(BURST),
        SERVING_RATE_LIMIT_REDIS_URL=redis_url,
        # The client is named by X-Client-Id, honoured from this trusted peer only: counted by
        # address, it would share the bucket "127.0.0.1" the in-process test above emptied.
        SERVING_RATE_LIMIT_TRUSTED_PEERS='["127.0.0.1"]',
    )
    service = ServiceProcess(env)
    service.start()
    try:

        def call(_: int) -> int:
            # A connection per request, sent together: the kernel spreads them over both workers.
            with httpx.Client(base_url=service.url, timeout=30) as client:
                return client.get("/version", headers={"x-client-id": "bench-1"}).status_code

        with ThreadPoolExecutor(max_workers=16) as pool:
            codes = Counter(pool.map(call, range(8 * BURST)))
    finally:
        service.stop()
    assert codes == {200: BURST, 429: 7 * BURST}

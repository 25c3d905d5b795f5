"""Who the HTTP rate limit counts: a client cannot name itself out of its bucket.

A real `bentoml serve` with the limit on, driven as an attacker would (a new X-Client-Id per
request, a header that is not UTF-8), and the middleware's trust in a proxy's header in-process.
"""

from __future__ import annotations

import asyncio
from collections import Counter

import httpx
import pytest
from pydantic import ValidationError
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from serving.ratelimit import RateLimitMiddleware
from serving.settings import ServingSettings
from tests.serving.conftest import ServiceProcess, service_env

BURST = 3
# One token in 1,000 s: no request of a test's few seconds is let through by a refill.
RATE = 0.001


@pytest.fixture(scope="module")
def limited_service(serving_registry):
    process = ServiceProcess(
        service_env(
            serving_registry,
            "ratelimit-attack.db",
            SERVING_RATE_LIMIT_PER_S=str(RATE),
            SERVING_RATE_LIMIT_BURST=str(BURST),
        )
    )
    process.start()
    yield process
    process.stop()


def test_a_new_client_id_per_request_does_not_reset_the_limit(limited_service):
    with httpx.Client(base_url=limited_service.url, timeout=30) as client:
        codes = [
            client.get("/version", headers={"x-client-id": f"rotated-{n}"}).status_code
            for n in range(BURST + 4)
        ]
        # A header that is not UTF-8 is answered at once (it hung 30 s, then a 500).
        odd = client.get("/version", headers=[(b"x-client-id", b"\xff\xfe")], timeout=10)
    assert Counter(codes) == {200: BURST, 429: 4}
    assert odd.status_code == 429
    assert "rate limit" in odd.json()["error"]


async def _ok(request: Request) -> JSONResponse:
    return JSONResponse({"ok": True})


def _codes(trusted: set[str], client_ids: list[bytes]) -> list[int]:
    """Statuses of requests from 127.0.0.1 (httpx's ASGI transport) with these X-Client-Ids."""
    app = Starlette(routes=[Route("/predict", _ok, methods=["POST"])])
    limited = RateLimitMiddleware(app, RATE, 1, trusted_peers=trusted)

    async def run() -> list[int]:
        transport = httpx.ASGITransport(app=limited)
        async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
            return [
                (await client.post("/predict", headers=[(b"x-client-id", one)])).status_code
                for one in client_ids
            ]

    return asyncio.run(run())


def test_a_trusted_proxy_names_its_clients_even_in_bytes_that_are_not_utf8():
    assert _codes({"127.0.0.1"}, [b"a", b"b", b"\xff", b"\xfe", b"a"]) == [200, 200, 200, 200, 429]


def test_an_untrusted_peer_is_one_client_whatever_its_header_says():
    assert _codes({"10.0.0.1"}, [b"a", b"b", b"\xff"]) == [200, 429, 429]


@pytest.mark.parametrize("peers", ['["proxy.local"]', '["10.0.0.300"]'])
def test_a_trusted_peer_that_is_not_an_address_fails_at_start(monkeypatch, peers):
    monkeypatch.setenv("SERVING_RATE_LIMIT_TRUSTED_PEERS", peers)
    with pytest.raises(ValidationError, match="SERVING_RATE_LIMIT_TRUSTED_PEERS"):
        ServingSettings()


def test_trusted_peers_are_written_as_the_server_reports_them(monkeypatch):
    monkeypatch.setenv("SERVING_RATE_LIMIT_TRUSTED_PEERS", '["0:0:0:0:0:0:0:1", "127.0.0.1"]')
    assert ServingSettings().rate_limit_trusted_peers == ["::1", "127.0.0.1"]

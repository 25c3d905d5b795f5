"""Per-client token buckets, and the ASGI middleware that answers 429 with Retry-After."""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass

from starlette.types import ASGIApp, Receive, Scope, Send

from serving.guards import send_json_error

EXEMPT_PATHS = ("/healthz", "/livez", "/readyz", "/metrics", "/docs.json")


@dataclass
class _Bucket:
    tokens: float
    updated: float


class TokenBuckets:
    """`rate` tokens per second per client, up to `burst`; pure logic with an injectable clock."""

    def __init__(
        self,
        rate: float,
        burst: int,
        clock: Callable[[], float] = time.monotonic,
        max_clients: int = 100_000,
    ) -> None:
        self.rate, self.burst, self.clock, self.max_clients = rate, burst, clock, max_clients
        self._buckets: dict[str, _Bucket] = {}

    def acquire(self, client: str) -> float:
        """0 when a request may pass, else the seconds until it could."""
        now = self.clock()
        bucket = self._buckets.get(client)
        if bucket is None:
            if len(self._buckets) >= self.max_clients:
                self._buckets.clear()  # bounded memory; forgetting grants a fresh burst
            bucket = self._buckets[client] = _Bucket(float(self.burst), now)
        bucket.tokens = min(self.burst, bucket.tokens + (now - bucket.updated) * self.rate)
        bucket.updated = now
        if bucket.tokens >= 1:
            bucket.tokens -= 1
            return 0.0
        return (1 - bucket.tokens) / self.rate


class RateLimitMiddleware:
    """Limits HTTP requests per client (X-Client-Id header, else the peer address)."""

    def __init__(self, app: ASGIApp, rate: float, burst: int) -> None:
        self.app = app
        self.buckets = TokenBuckets(rate, burst)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        client = headers.get(b"x-client-id", b"").decode() or (scope.get("client") or ("?",))[0]
        wait = self.buckets.acquire(client)
        if wait == 0:
            await self.app(scope, receive, send)
            return
        await send_json_error(
            send,
            429,
            f"rate limit exceeded: retry in {wait:.2f} s",
            [(b"retry-after", str(math.ceil(wait)).encode())],
        )

"""Per-client token buckets, and the ASGI middleware that answers 429 with Retry-After.

The buckets count per worker; with a Redis URL the middleware counts in Redis instead, shared by
every worker and replica (serving/shared_ratelimit.py).
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Protocol

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


class Limiter(Protocol):
    """Counts a client's request: 0 when it may pass, else the seconds until it could."""

    async def acquire(self, client: str) -> float:
        """Count one request of `client`."""
        ...


class LocalLimiter:
    """This worker's token buckets behind the async Limiter interface."""

    def __init__(self, rate: float, burst: int) -> None:
        self.buckets = TokenBuckets(rate, burst)

    async def acquire(self, client: str) -> float:
        """Count one request of `client` in this worker's bucket."""
        return self.buckets.acquire(client)


def limiter_for(rate: float, burst: int, redis_url: str | None) -> Limiter:
    """Shared through Redis when there is a URL, else this worker's own buckets."""
    if redis_url is None:
        return LocalLimiter(rate, burst)
    from serving.shared_ratelimit import SharedWindows  # imports `limits` only when used

    return SharedWindows(redis_url, rate, burst)


class RateLimitMiddleware:
    """Limits HTTP requests per client: its address, or a trusted peer's X-Client-Id header."""

    def __init__(
        self,
        app: ASGIApp,
        rate: float,
        burst: int,
        redis_url: str | None = None,
        trusted_peers: Collection[str] = (),
    ) -> None:
        self.app = app
        self.limiter = limiter_for(rate, burst, redis_url)
        self.trusted_peers = frozenset(trusted_peers)

    def client_of(self, scope: Scope) -> str:
        """Whom a request is counted for: the peer, unless a trusted peer names the client."""
        peer = str((scope.get("client") or ("?",))[0])
        if peer not in self.trusted_peers:
            return peer
        for name, value in scope.get("headers") or ():
            if name == b"x-client-id" and value:
                # Latin-1 decodes any bytes: a header that is not UTF-8 is still an id.
                return value.decode("latin-1")
        return peer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] in EXEMPT_PATHS:
            await self.app(scope, receive, send)
            return
        wait = await self.limiter.acquire(self.client_of(scope))
        if wait == 0:
            await self.app(scope, receive, send)
            return
        await send_json_error(
            send,
            429,
            f"rate limit exceeded: retry in {wait:.2f} s",
            [(b"retry-after", str(math.ceil(wait)).encode())],
        )

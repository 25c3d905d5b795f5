"""The HTTP rate limit shared by every worker and replica, kept in Redis by the `limits` library.

In memory (serving/ratelimit.py) each worker counts on its own, so two workers behind one port,
or two replicas, let through twice the limit. Given a Redis URL (SERVING_RATE_LIMIT_REDIS_URL,
else the chat tier's CHAT_BROKER_URL) the count lives in Redis instead: one moving window per
client, the same for everyone who asks. The token bucket's `rate` and `burst` become a window of
`burst` requests per `burst / rate` seconds (whole seconds, at least one), so the long-run rate
and the largest burst stay what the settings say.
"""

from __future__ import annotations

import hashlib
import logging
import time
from dataclasses import dataclass

from limits import RateLimitItemPerSecond
from limits.aio.storage import RedisStorage
from limits.aio.strategies import MovingWindowRateLimiter
from limits.errors import StorageError

logger = logging.getLogger("serving")
KEY_PREFIX = "supportloop-ratelimit"
# A Redis outage is logged at most this often per worker, not once per request.
OUTAGE_LOG_INTERVAL_S = 60.0


@dataclass(frozen=True)
class Window:
    """`amount` requests per `seconds`: a token bucket's rate and burst as a moving window."""

    amount: int
    seconds: int

    @classmethod
    def of(cls, rate: float, burst: int) -> Window:
        """The window letting `burst` through at once and `rate` per second in the long run."""
        seconds = max(1, round(burst / rate))
        return cls(max(1, round(rate * seconds)), seconds)


def limits_uri(url: str) -> str:
    """The `limits` storage URI of a redis://, rediss:// or unix:// URL (its asyncio client)."""
    if url.startswith("unix://"):
        return "async+redis+" + url
    return "async+" + url


class SharedWindows:
    """Per-client moving windows in Redis; `acquire` answers like TokenBuckets.acquire."""

    def __init__(self, url: str, rate: float, burst: int) -> None:
        self.window = Window.of(rate, burst)
        self.item = RateLimitItemPerSecond(self.window.amount, self.window.seconds)
        # redis-py's asyncio client (already a dependency of the chat tier), not coredis.
        storage = RedisStorage(
            limits_uri(url), implementation="redispy", key_prefix=KEY_PREFIX, wrap_exceptions=True
        )
        self.limiter = MovingWindowRateLimiter(storage)
        self._outage_logged = float("-inf")

    async def acquire(self, client: str) -> float:
        """0 when a request may pass, else the seconds until it could.

        The client's id is hashed: a long X-Client-Id header never becomes a long Redis key.
        When Redis cannot be reached the request passes (fail open, logged): the API stays up,
        and the ingress's own limit is the backstop.
        """
        key = hashlib.sha256(client.encode()).hexdigest()[:32]
        try:
            if await self.limiter.hit(self.item, "http", key):
                return 0.0
            stats = await self.limiter.get_window_stats(self.item, "http", key)
        except StorageError as failure:
            now = time.monotonic()
            if now - self._outage_logged > OUTAGE_LOG_INTERVAL_S:
                self._outage_logged = now
                logger.warning("rate limit not applied: Redis unavailable (%s)", failure)
            return 0.0
        return max(stats.reset_time - time.time(), 0.01)

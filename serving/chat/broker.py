"""Fan-out of events to connections: in-process by default, Redis pub/sub across workers.

An envelope names its recipients (user ids and/or roles) and carries the frame text; every
worker delivers it to the connections it holds. With Redis the publishing worker hears its own
envelope back like any other, so there is one delivery path.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

import orjson

if TYPE_CHECKING:  # redis is imported when a broker URL asks for it
    from redis.asyncio import Redis

logger = logging.getLogger("serving.chat.broker")
CHANNEL = "supportloop:chat:events"


@dataclass(frozen=True)
class Envelope:
    """A frame and who should get it."""

    frame: str
    user_ids: tuple[str, ...] = ()
    roles: tuple[str, ...] = ()
    exclude_user: str | None = None
    # When set, agents' connections get this frame instead (a bot_reply with the model's view,
    # which customers must not see: serving/chat/redaction.py).
    agent_frame: str | None = None

    def frame_for(self, role: str) -> str:
        """The frame a connection of `role` gets."""
        return self.agent_frame if self.agent_frame is not None and role == "agent" else self.frame

    def to_bytes(self) -> bytes:
        """Wire form for Redis."""
        return orjson.dumps(
            {
                "frame": self.frame,
                "user_ids": self.user_ids,
                "roles": self.roles,
                "exclude_user": self.exclude_user,
                "agent_frame": self.agent_frame,
            }
        )

    @classmethod
    def from_bytes(cls, raw: bytes) -> Envelope:
        """Parse the wire form."""
        document = orjson.loads(raw)
        return cls(
            frame=document["frame"],
            user_ids=tuple(document.get("user_ids") or ()),
            roles=tuple(document.get("roles") or ()),
            exclude_user=document.get("exclude_user"),
            agent_frame=document.get("agent_frame"),
        )


Deliver = Callable[[Envelope], Awaitable[None]]


class InProcessBroker:
    """Delivers straight to this process's connections."""

    # Publishing is delivering, at once: nothing for a publisher to do before the round trip.
    round_trip = False

    def __init__(self, deliver: Deliver) -> None:
        self.deliver = deliver

    async def start(self) -> None:
        """Nothing to connect."""

    async def publish(self, envelope: Envelope) -> None:
        """Deliver now."""
        await self.deliver(envelope)

    async def close(self) -> None:
        """Nothing to close."""


class RedisBroker:
    """Publishes envelopes on a Redis channel and delivers what it hears on it."""

    # An envelope comes back to its publisher (delivered) only after a trip through Redis.
    round_trip = True

    def __init__(self, url: str, deliver: Deliver, channel: str = CHANNEL) -> None:
        self.url, self.deliver, self.channel = url, deliver, channel
        self._listener: asyncio.Task[None] | None = None
        self._ready = asyncio.Event()
        self._redis: Redis | None = None

    async def start(self) -> None:
        """Connect and subscribe; fails start-up when Redis cannot be reached."""
        import redis.asyncio as redis

        self._redis = redis.from_url(self.url)
        await self._redis.ping()
        self._listener = asyncio.create_task(self._listen())
        await asyncio.wait_for(self._ready.wait(), timeout=10)

    async def _listen(self) -> None:
        assert self._redis is not None  # started
        delay = 0.5
        while True:
            try:
                async with self._redis.pubsub() as pubsub:
                    await pubsub.subscribe(self.channel)
                    self._ready.set()
                    delay = 0.5
                    async for message in pubsub.listen():
                        if message["type"] != "message":
                            continue
                        try:
                            await self.deliver(Envelope.from_bytes(message["data"]))
                        except Exception:
                            logger.exception("delivering a broker envelope failed")
            except asyncio.CancelledError:
                raise
            except Exception:
                # Clients miss live events meanwhile; they are in the event log for resume.
                logger.exception("redis subscription lost; retrying in %.1f s", delay)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 10.0)

    async def publish(self, envelope: Envelope) -> None:
        """Publish; when Redis is down, deliver locally so this worker's users still hear it."""
        try:
            assert self._redis is not None  # started
            await self._redis.publish(self.channel, envelope.to_bytes())
        except Exception:
            logger.exception("redis publish failed; delivering to local connections only")
            await self.deliver(envelope)

    async def close(self) -> None:
        """Stop listening and disconnect."""
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._redis is not None:
            await self._redis.aclose()


def make_broker(url: str | None, deliver: Deliver) -> InProcessBroker | RedisBroker:
    """The broker a CHAT_BROKER_URL asks for."""
    return RedisBroker(url, deliver) if url else InProcessBroker(deliver)

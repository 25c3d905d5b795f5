"""Live WebSocket connections of this worker: one outbound queue and writer task each.

A slow client never stalls the others: frames queue per connection, and a client that lets its
queue fill up is disconnected (it resumes from its last seq when it comes back).
Limits are per user, not per socket: a user's sockets share their rate buckets, and a user holds
at most `max_sockets_per_user` of them here (more sockets must not mean more frames).
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import logging
import time
from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass

import uvicorn
from starlette.websockets import WebSocket, WebSocketState

from serving.chat.auth import Identity
from serving.chat.broker import Envelope
from serving.chat.protocol import MAX_MESSAGE_BYTES
from serving.ratelimit import TokenBuckets

logger = logging.getLogger("serving.chat")
MAX_QUEUED_FRAMES = 1000
_ids = itertools.count(1)


class Connection:
    """One client socket: identity, outbound queue, rate limit and last time heard from."""

    def __init__(self, websocket: WebSocket, identity: Identity) -> None:
        self.websocket = websocket
        self.identity = identity
        self.connection_id = next(_ids)
        # Frames waiting for the writer (None: flush and stop). A deque and one future the writer
        # sleeps on, not an asyncio.Queue: a held socket's queue is empty almost always, and the
        # Queue's three deques and its put/get bookkeeping cost memory and CPU per connection.
        self.queue: deque[str | None] = deque()
        self._wake: asyncio.Future[None] | None = None
        self.last_heard = time.monotonic()
        self.closing = False
        self._writer: asyncio.Task[None] | None = None
        self._closer: asyncio.Task[None] | None = None

    def start(self) -> None:
        """Start the writer task."""
        self._writer = asyncio.create_task(self._write())

    def send(self, frame: str) -> None:
        """Queue a frame; a client too slow to drain its queue is cut off."""
        if self.closing:
            return
        if len(self.queue) >= MAX_QUEUED_FRAMES:
            logger.warning("connection %s too slow; closing it", self.connection_id)
            self.closing = True
            if self._writer is not None:
                self._writer.cancel()
            self._closer = asyncio.create_task(self._close_socket(1013, "too slow"))
            return
        self._put(frame)

    def _put(self, frame: str | None) -> None:
        self.queue.append(frame)
        if self._wake is not None and not self._wake.done():
            self._wake.set_result(None)

    async def _write(self) -> None:
        # The socket going away ends the writer; the reader notices and cleans up.
        with contextlib.suppress(Exception):
            while True:
                while self.queue:
                    frame = self.queue.popleft()
                    if frame is None:
                        return
                    await self.websocket.send_text(frame)
                self._wake = asyncio.get_running_loop().create_future()
                await self._wake

    async def _close_socket(self, code: int, reason: str) -> None:
        if self.websocket.application_state is WebSocketState.CONNECTED:
            with contextlib.suppress(Exception):
                await self.websocket.close(code=code, reason=reason)

    async def close(self, code: int, reason: str = "") -> None:
        """Flush what is queued, then close the socket."""
        if not self.closing:
            self.closing = True
            self._put(None)
            if self._writer is not None:
                with contextlib.suppress(Exception):
                    await asyncio.wait_for(self._writer, timeout=5)
        await self._close_socket(code, reason)

    async def stop(self) -> None:
        """Stop writing (the socket is already closed)."""
        if self._writer is not None:
            self._writer.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._writer


@dataclass(frozen=True)
class UserLimits:
    """Per-user limits of one worker (CHAT_RATE_*, CHAT_RESUME_*, CHAT_MAX_SOCKETS_PER_USER)."""

    rate_per_s: float
    rate_burst: int
    resume_rate_per_s: float
    resume_burst: int
    max_sockets: int


class TooManySockets(Exception):
    """The user already holds the most sockets allowed here."""


class ConnectionRegistry:
    """This worker's connections by user id, and each user's rate buckets."""

    def __init__(self, limits: UserLimits) -> None:
        self.limits = limits
        self.by_user: dict[str, set[Connection]] = {}
        self._frames = TokenBuckets(limits.rate_per_s, limits.rate_burst)
        self._resumes = TokenBuckets(limits.resume_rate_per_s, limits.resume_burst)

    def add(self, connection: Connection) -> bool:
        """Register; True when it is the user's first connection here; TooManySockets."""
        connections = self.by_user.setdefault(connection.identity.user_id, set())
        if len(connections) >= self.limits.max_sockets:
            raise TooManySockets(
                f"too many connections: at most {self.limits.max_sockets} per user"
            )
        connections.add(connection)
        return len(connections) == 1

    def frame_wait(self, user_id: str) -> float:
        """0 when the user's next frame may be handled, else seconds to wait (all sockets)."""
        return self._frames.acquire(user_id)

    def resume_wait(self, user_id: str) -> float:
        """0 when the user may replay from the store now, else seconds to wait."""
        return self._resumes.acquire(user_id)

    def remove(self, connection: Connection) -> bool:
        """Forget; True when it was the user's last connection here."""
        connections = self.by_user.get(connection.identity.user_id, set())
        connections.discard(connection)
        if not connections:
            self.by_user.pop(connection.identity.user_id, None)
            return True
        return False

    def all(self) -> Iterable[Connection]:
        """Every connection."""
        for connections in self.by_user.values():
            yield from connections

    async def deliver(self, envelope: Envelope) -> None:
        """Queue an envelope's frame on each recipient connection held here."""
        targets: set[Connection] = set()
        for user_id in envelope.user_ids:
            targets.update(self.by_user.get(user_id, ()))
        if envelope.roles:
            targets.update(c for c in self.all() if c.identity.role.value in envelope.roles)
        for connection in targets:
            if connection.identity.user_id != envelope.exclude_user:
                connection.send(envelope.frame_for(connection.identity.role.value))


def refuse_compression() -> None:
    """Make this process's uvicorn servers answer WebSocket handshakes without permessage-deflate.

    Browsers and `websockets` clients offer it; uvicorn accepts it by default and then keeps a
    zlib compressor and decompressor per socket for its whole life (most of a held connection's
    memory, bench/README.md "Chat tier") and runs zlib over every frame both ways, for chat frames
    of a few hundred bytes. BentoML 1.4 builds uvicorn's `Config` itself, after importing the
    service module and without a way to pass `ws_per_message_deflate`, so the service's import
    changes that default here: an explicit `ws_per_message_deflate=True` still wins. It also
    bounds the message size the socket reads (MAX_MESSAGE_BYTES, not uvicorn's 16 MiB).
    """
    if getattr(uvicorn.Config, "refuses_compression", False):
        return

    class Config(uvicorn.Config):
        refuses_compression = True

        def __init__(self, *args: object, **kwargs: object) -> None:
            kwargs.setdefault("ws_per_message_deflate", False)
            kwargs.setdefault("ws_max_size", MAX_MESSAGE_BYTES)
            super().__init__(*args, **kwargs)  # type: ignore[arg-type]

    uvicorn.Config = Config  # type: ignore[misc]

"""The chat hub: authenticates sockets, reads frames, dispatches them, and fans events out.

One hub per worker process. State that must survive a restart or be shared by workers lives in
the store (messages, events, rooms, requests); the hub holds only live connections.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from starlette.websockets import WebSocket, WebSocketDisconnect

from serving.chat import protocol
from serving.chat.auth import AuthError, verify_token
from serving.chat.bot import BotPolicy, ResponseCatalogue
from serving.chat.broker import Envelope, make_broker
from serving.chat.connections import Connection, ConnectionRegistry, TooManySockets, UserLimits
from serving.chat.protocol import CloseCode, ErrorCode, FrameError
from serving.chat.settings import ChatSettings
from serving.chat.store import ChatStore, room_audience

logger = logging.getLogger("serving.chat")
Classify = Callable[[str, dict[str, Any] | None], Awaitable[dict[str, Any]]]
T = TypeVar("T")
# A heartbeat keeps a throttled connection alive and costs nothing; a resume replays from the
# store and draws from its own, slower bucket.
UNLIMITED = frozenset({"heartbeat"})


class ChatHub:
    """Connections, dispatch and fan-out for one worker."""

    def __init__(self, settings: ChatSettings, classify: Classify) -> None:
        from serving.chat.handlers import FrameHandlers  # handlers need the hub type

        self.settings = settings
        self.secret = settings.require_secret()
        self.catalogue = ResponseCatalogue.load(settings.responses_path)
        self.policy = BotPolicy(settings.handoff_after_fallbacks, settings.frustration_threshold)
        self.store = ChatStore(settings.store_url)
        # SQLite takes one writer at a time and its busy handler sleeps in growing steps, so
        # writers of one process competing for it add latency: one writer thread queues them
        # without sleeping, while reads (WAL) run beside it. A server database gets one pool.
        self.readers = ThreadPoolExecutor(settings.store_threads, thread_name_prefix="chat-read")
        self.writer = (
            ThreadPoolExecutor(1, thread_name_prefix="chat-write")
            if self.store.engine.dialect.name == "sqlite"
            else self.readers
        )
        self.connections = ConnectionRegistry(
            UserLimits(
                settings.rate_per_s,
                settings.rate_burst,
                settings.resume_rate_per_s,
                settings.resume_burst,
                settings.max_sockets_per_user,
            )
        )
        self.broker = make_broker(settings.broker_url, self.connections.deliver)
        self.classify = classify
        self.handlers = FrameHandlers(self)
        self._heartbeat: asyncio.Task[None] | None = None
        self.frames_in = 0

    async def start(self) -> None:
        """Connect the broker and start the heartbeat."""
        await self.broker.start()
        self._heartbeat = asyncio.create_task(self._heartbeat_loop())

    async def close(self) -> None:
        """Say goodbye to every client and release the broker and the store."""
        if self._heartbeat is not None:
            self._heartbeat.cancel()
        for connection in list(self.connections.all()):
            await connection.close(CloseCode.SHUTDOWN, "server shutting down")
        await self.broker.close()
        self.writer.shutdown(wait=True)
        self.readers.shutdown(wait=True)
        self.store.close()

    # --- storage and fan-out helpers ------------------------------------------------------

    async def db(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a blocking store call off the event loop."""
        executor = self.writer if getattr(function, "writes", False) else self.readers
        return await asyncio.get_running_loop().run_in_executor(
            executor, functools.partial(function, *args, **kwargs)
        )

    async def room_members(self, room_id: str) -> tuple[str, ...]:
        """Member ids of a room (empty when it is gone)."""
        room = await self.db(self.store.rooms.room, room_id)
        return tuple(room["member_ids"]) if room else ()

    async def emit(
        self,
        audience: str,
        event_type: str,
        data: dict[str, Any],
        user_ids: Iterable[str] = (),
        roles: Iterable[str] = (),
    ) -> int:
        """Persist an event (it gets a seq, replayable) and deliver it."""
        seq = await self.db(self.store.append_event, audience, event_type, data)
        frame = protocol.encode(event_type, {**data, "seq": seq})
        await self.broker.publish(Envelope(frame, tuple(user_ids), tuple(roles)))
        return seq

    async def emit_to_room(
        self, room_id: str, event_type: str, data: dict[str, Any], roles: Iterable[str] = ()
    ) -> int:
        """Persist and deliver an event to a room's members (and optionally whole roles)."""
        members = await self.room_members(room_id)
        return await self.emit(room_audience(room_id), event_type, data, members, roles)

    async def publish_stored(
        self, event_type: str, data: dict[str, Any], members: Iterable[str] | None = None
    ) -> None:
        """Deliver an already persisted room event (a message) to the room's members."""
        if members is None:
            members = await self.room_members(data["room_id"])
        await self.broker.publish(Envelope(protocol.encode(event_type, data), tuple(members)))

    async def ephemeral(
        self, event_type: str, data: dict[str, Any], user_ids: Iterable[str], exclude: str
    ) -> None:
        """Deliver without persisting (typing, presence): not replayed."""
        frame = protocol.encode(event_type, data)
        await self.broker.publish(Envelope(frame, tuple(user_ids), exclude_user=exclude))

    # --- connection lifecycle -------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        """Run one client connection from handshake to close."""
        try:
            identity = verify_token(self.secret, websocket.query_params.get("token"))
        except AuthError as exc:
            # Accept first: a close before accept is an HTTP 403 and the client never sees 1008.
            await websocket.accept()
            await websocket.close(code=CloseCode.POLICY_VIOLATION, reason=str(exc)[:120])
            return
        await websocket.accept()
        connection = Connection(websocket, identity)
        try:
            first_here = self.connections.add(connection)
        except TooManySockets as exc:
            logger.info("refused a socket of %s: %s", identity.user_id, exc)
            await websocket.close(code=CloseCode.TOO_MANY_SOCKETS, reason=str(exc))
            return
        connection.start()
        try:
            last_seq = await self.db(self.store.last_seq)
            connection.send(
                protocol.encode(
                    "welcome",
                    {
                        "user_id": identity.user_id,
                        "role": identity.role.value,
                        "last_seq": last_seq,
                        "connection_id": connection.connection_id,
                    },
                )
            )
            if first_here:
                await self.handlers.announce_presence(identity, "online")
            await self._read_frames(connection)
        finally:
            if self.connections.remove(connection):
                with contextlib.suppress(Exception):
                    await self.handlers.announce_presence(identity, "offline")
            await connection.stop()

    async def _read_frames(self, connection: Connection) -> None:
        websocket = connection.websocket
        while True:
            try:
                message = await websocket.receive()
            except (WebSocketDisconnect, RuntimeError):
                return
            if message["type"] == "websocket.disconnect":
                return
            connection.last_heard = time.monotonic()
            raw = message.get("text")
            if raw is None:
                raw = message.get("bytes") or b""
            await self._handle_raw(connection, raw)

    async def _handle_raw(self, connection: Connection, raw: str | bytes) -> None:
        self.frames_in += 1
        user_id = connection.identity.user_id
        try:
            try:
                frame_type, data = protocol.parse_frame(raw, self.settings.max_frame_bytes)
            except FrameError:
                self._charge(user_id, "invalid")  # a bad frame is no way around the limit
                raise
            self._charge(user_id, frame_type)
            if frame_type in protocol.AGENT_ONLY and connection.identity.role.value != "agent":
                raise FrameError(ErrorCode.FORBIDDEN, f"{frame_type} is for agents only")
            await self.handlers.dispatch(connection, frame_type, data)
        except FrameError as exc:
            connection.send(protocol.error_frame(exc.code, exc.message))
        except Exception:
            logger.exception("frame from %s failed", connection.identity.user_id)
            connection.send(protocol.error_frame(ErrorCode.INTERNAL, "internal error; retry"))

    def _charge(self, user_id: str, frame_type: str) -> None:
        """Take a token from the user's bucket (shared by all their sockets), else a 429."""
        if frame_type in UNLIMITED:
            return
        if frame_type == "resume":
            if (wait := self.connections.resume_wait(user_id)) > 0:
                raise FrameError(
                    ErrorCode.RATE_LIMITED,
                    f"resume limit exceeded: retry in {wait:.2f} s "
                    f"(CHAT_RESUME_RATE_PER_S={self.settings.resume_rate_per_s})",
                )
        elif (wait := self.connections.frame_wait(user_id)) > 0:
            raise FrameError(ErrorCode.RATE_LIMITED, f"rate limit exceeded: retry in {wait:.2f} s")

    async def _heartbeat_loop(self) -> None:
        interval, timeout = self.settings.heartbeat_interval_s, self.settings.heartbeat_timeout_s
        ping = protocol.encode("ping", {})
        while True:
            await asyncio.sleep(interval)
            now = time.monotonic()
            for connection in list(self.connections.all()):
                if now - connection.last_heard > timeout:
                    logger.info("closing silent connection of %s", connection.identity.user_id)
                    asyncio.create_task(  # noqa: RUF006 - the close finishes on its own
                        connection.close(CloseCode.HEARTBEAT_TIMEOUT, "heartbeat timeout")
                    )
                else:
                    connection.send(ping)

    def stats(self) -> dict[str, Any]:
        """Connection and frame counters for /chat/stats."""
        return {"connections": self.connections.count(), "frames_in": self.frames_in}

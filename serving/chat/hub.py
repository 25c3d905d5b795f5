"""The chat hub: authenticates sockets, reads frames, rate-limits and dispatches them.

One hub per worker process. State that must survive a restart or be shared by workers lives in
the store (messages, events, rooms, requests); the hub holds only live connections. Handlers get
a `ChatContext` (serving/chat/context.py) and the sending connection, never the hub.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from functools import partial

from starlette.websockets import WebSocket, WebSocketDisconnect

from serving.chat import protocol
from serving.chat.agent_desk import AgentDesk, KnownIntents, catalogue_intents
from serving.chat.auth import AuthError, socket_token, verify_token
from serving.chat.bot import BotPolicy, ResponseCatalogue
from serving.chat.broker import Envelope, make_broker
from serving.chat.checkpoint import WalCheckpointer, file_database
from serving.chat.classification import Classify
from serving.chat.connections import (
    Connection,
    ConnectionRegistry,
    TooManySockets,
    UserLimits,
    refuse_compression,
)
from serving.chat.context import ChatContext, EventBus, StoreRunner
from serving.chat.handlers import FrameHandlers
from serving.chat.presence import UserViews, announce_presence
from serving.chat.presence_reads import BatchedReads, read_views
from serving.chat.protocol import CloseCode, ErrorCode, FrameError
from serving.chat.responder import BotKit, BotResponder
from serving.chat.settings import ChatSettings
from serving.chat.store import ChatStore

logger = logging.getLogger("serving.chat")
# Before BentoML's worker builds its uvicorn server (it imports the service, which imports this).
refuse_compression()
# A heartbeat keeps a throttled connection alive and costs nothing; a resume replays from the
# store and draws from its own, slower bucket.
UNLIMITED = frozenset({"heartbeat"})


class ChatHub:
    """Connections and dispatch for one worker; it builds the handlers' context and the broker."""

    def __init__(
        self, settings: ChatSettings, classify: Classify, known_intents: KnownIntents | None = None
    ) -> None:
        self.settings = settings
        self.secret = settings.require_secret()
        catalogue = ResponseCatalogue.load(settings.responses_path)
        policy = BotPolicy(settings.handoff_after_fallbacks, settings.frustration_threshold)
        self.store = ChatStore(settings.store_url)
        self.db = StoreRunner(self.store, settings.store_threads)
        # SQLite: group commits run on the event loop; its WAL checkpoints do not (checkpoint.py).
        database = file_database(self.store.engine)
        self.checkpointer = WalCheckpointer(self.store.engine, database) if database else None
        if self.checkpointer is not None:
            self.db.commits.after_group = self.checkpointer.after_commit
            self.checkpointer.start()
        self.connections = ConnectionRegistry(
            UserLimits(
                settings.rate_per_s,
                settings.rate_burst,
                settings.resume_rate_per_s,
                settings.resume_burst,
                settings.max_sockets_per_user,
            )
        )
        # Connects' welcome seqs and presence peers, from memory once read (together with the
        # other connects' meanwhile): every envelope this worker publishes or hears keeps them
        # current (serving/chat/presence.py, presence_reads.py).
        self.view_reads = BatchedReads(partial(self.db, read_views, self.store))
        self.views = UserViews(self.view_reads.read)
        self.broker = make_broker(settings.broker_url, self._deliver)
        # What handlers get: the store, the event bus (one publish callable, not the broker),
        # and the limits they enforce. The hub keeps the sockets to itself.
        context = ChatContext(
            store=self.store,
            db=self.db,
            events=EventBus(self.store, self.db, self._publish),
            max_content_chars=settings.max_content_chars,
            replay_limit=settings.replay_limit,
        )
        bot = BotResponder(
            context, BotKit(catalogue, policy, classify, settings.classify_timeout_s)
        )
        # The model's intents when it is in-process; the catalogue's when it is remote.
        desk = AgentDesk(catalogue, known_intents or catalogue_intents(catalogue))
        self.events = context.events
        self.handlers = FrameHandlers(context, bot, desk, self.views)
        self._heartbeat: asyncio.Task[None] | None = None

    async def _publish(self, envelope: Envelope) -> None:
        # Redis: applied before the round trip too, so the sender's next connect here already
        # counts it. In process, publishing is delivering and `_deliver` applies it, once.
        if self.broker.round_trip:
            self.views.heard(envelope)
        await self.broker.publish(envelope)

    async def _deliver(self, envelope: Envelope) -> None:
        self.views.heard(envelope)  # the other workers' envelopes too (Redis)
        await self.connections.deliver(envelope)

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
        self.db.shutdown()
        if self.checkpointer is not None:
            self.checkpointer.close()
        self.store.close()

    # --- connection lifecycle -------------------------------------------------------------

    async def serve(self, websocket: WebSocket) -> None:
        """Run one client connection from handshake to close."""
        offered = websocket.scope.get("subprotocols") or []
        token, subprotocol = socket_token(websocket.query_params.get("token"), offered)
        try:
            identity = verify_token(self.secret, token, self.settings.token_max_lifetime_s)
        except AuthError as exc:
            # Accept first: a close before accept is an HTTP 403 and the client never sees 1008.
            await websocket.accept(subprotocol=subprotocol)
            await websocket.close(code=CloseCode.POLICY_VIOLATION, reason=str(exc)[:120])
            return
        await websocket.accept(subprotocol=subprotocol)
        connection = Connection(websocket, identity)
        try:
            first_here = self.connections.add(connection)
        except TooManySockets as exc:
            logger.info("refused a socket of %s: %s", identity.user_id, exc)
            await websocket.close(code=CloseCode.TOO_MANY_SOCKETS, reason=str(exc))
            return
        connection.start()
        try:
            # The newest seq this user may replay, not the store's: that one is platform traffic.
            view = await self.views.view(identity)
            connection.send(
                protocol.encode(
                    "welcome",
                    {
                        "user_id": identity.user_id,
                        "role": identity.role.value,
                        "last_seq": view.last_seq,
                        "connection_id": connection.connection_id,
                    },
                )
            )
            if first_here:
                await announce_presence(self.events, identity, "online", view.peers)
            await self._read_frames(connection)
        finally:
            if self.connections.remove(connection):
                with contextlib.suppress(Exception):
                    peers = (await self.views.view(identity)).peers  # as they are now
                    await announce_presence(self.events, identity, "offline", peers)
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

"""What frame handlers may use, and nothing else: the store, the event bus and their limits.

The hub owns sockets, the connection registry, rate buckets, the heartbeat and its own life
cycle; a handler gets a `ChatContext` (and the connection whose frame it handles), never the hub.
Like a Rasa channel's callback, the bus reaches the broker through one `publish` callable.
"""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable, Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Protocol, TypeVar

from serving.chat import protocol
from serving.chat.auth import Identity
from serving.chat.broker import Envelope
from serving.chat.event_log import room_audience
from serving.chat.group_commit import GroupCommitter, Job
from serving.chat.redaction import customer_view
from serving.chat.store import ChatStore, MessageEvent

T = TypeVar("T")
Publish = Callable[[Envelope], Awaitable[None]]


class StoreRunner:
    """Runs blocking store calls off the event loop."""

    def __init__(self, store: ChatStore, threads: int) -> None:
        # SQLite takes one writer at a time and its busy handler sleeps in growing steps, so
        # writers of one process competing for it add latency: one writer thread queues them
        # without sleeping, while reads (WAL) run beside it. A server database gets one pool.
        self.readers = ThreadPoolExecutor(threads, thread_name_prefix="chat-read")
        self.writer = (
            ThreadPoolExecutor(1, thread_name_prefix="chat-write")
            if store.engine.dialect.name == "sqlite"
            else self.readers
        )
        # Message writes go through this: concurrent ones share a transaction (one commit). On
        # SQLite a group runs on the event loop (no GIL hand-offs; serving/chat/group_commit.py).
        sqlite = store.engine.dialect.name == "sqlite"
        self.commits = GroupCommitter(store.engine, None if sqlite else self.writer)

    async def __call__(self, function: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """Run a store method in a thread: on the writer thread when it is marked `@writes`."""
        executor = self.writer if getattr(function, "writes", False) else self.readers
        return await asyncio.get_running_loop().run_in_executor(
            executor, functools.partial(function, *args, **kwargs)
        )

    async def group(self, job: Job[T], alone: Callable[[], T] | None = None) -> T:
        """Run a write job in the next group commit; its result once that committed."""
        return await self.commits.run(job, alone)

    def shutdown(self) -> None:
        """Finish queued calls and stop the threads."""
        self.writer.shutdown(wait=True)
        self.readers.shutdown(wait=True)


class EventBus:
    """Persists replayable events and hands frames to the broker."""

    def __init__(self, store: ChatStore, db: StoreRunner, publish: Publish) -> None:
        self.store = store
        self.db = db
        self.publish = publish

    async def room_members(self, room_id: str) -> tuple[str, ...]:
        """Member ids of a room (empty when it is gone)."""
        room = await self.db(self.store.rooms.room, room_id)
        return room.member_ids if room else ()

    async def emit(
        self,
        audience: str,
        event_type: str,
        data: Mapping[str, Any],
        user_ids: Iterable[str] = (),
        roles: Iterable[str] = (),
    ) -> int:
        """Persist an event (it gets a seq, replayable) and deliver it."""
        seq = await self.db(self.store.events.append_event, audience, event_type, data)
        await self.deliver(event_type, data, seq, user_ids, roles)
        return seq

    async def deliver(
        self,
        event_type: str,
        data: Mapping[str, Any],
        seq: int,
        user_ids: Iterable[str] = (),
        roles: Iterable[str] = (),
    ) -> None:
        """Deliver an event stored already (e.g. by a group commit's job) with its seq."""
        frame = protocol.encode(event_type, {**data, "seq": seq})
        await self.publish(Envelope(frame, tuple(user_ids), tuple(roles)))

    async def emit_to_room(
        self,
        room_id: str,
        event_type: str,
        data: Mapping[str, Any],
        roles: Iterable[str] = (),
    ) -> int:
        """Persist and deliver an event to a room's members (and optionally whole roles)."""
        members = await self.room_members(room_id)
        return await self.emit(room_audience(room_id), event_type, data, members, roles)

    async def publish_message(
        self, event_type: str, event: MessageEvent, members: Iterable[str] | None = None
    ) -> None:
        """Deliver an already persisted message event to the room's members."""
        if members is None:
            members = await self.room_members(event["room_id"])
        # Customers get the message without the model's view of it; agents get all of it.
        frame = protocol.encode(event_type, customer_view(event_type, event))
        agent_frame = protocol.encode(event_type, event) if event_type == "bot_reply" else None
        envelope = Envelope(frame, tuple(members), agent_frame=agent_frame)
        await self.publish(envelope)

    async def ephemeral(
        self,
        event_type: str,
        data: Mapping[str, Any],
        user_ids: Iterable[str],
        roles: Iterable[str] = (),
        exclude: str | None = None,
    ) -> None:
        """Deliver without persisting (typing, presence): not replayed."""
        frame = protocol.encode(event_type, data)
        await self.publish(Envelope(frame, tuple(user_ids), tuple(roles), exclude_user=exclude))


@dataclass(frozen=True)
class ChatContext:
    """A handler's view of the chat tier: store calls, events, and the limits it enforces."""

    store: ChatStore
    db: StoreRunner
    events: EventBus
    max_content_chars: int
    replay_limit: int


class Client(Protocol):
    """The connection whose frame is being handled: who sent it, and a way to answer it."""

    @property
    def identity(self) -> Identity:
        """The signed-in user."""
        ...

    def send(self, frame: str) -> None:
        """Queue a frame for this connection only."""
        ...

"""What a connect needs to know about a customer, from the worker's memory once read.

Each connect sends `welcome` with the newest seq the user may replay (`last_seq_for`) and
announces the user's presence to everyone sharing a room with them (`peers`). Both were store
reads per socket: a burst of 500 connections queued 1,000 of them on the reader threads, in
front of the first messages' reads (bench/README.md, issue 14). Here one read fetches both; the
presence announcement, and later connects of the same customer, use what it found.

A customer's view stays exact while remembered because every worker hears every envelope (the
broker; with Redis, the other workers' too): a stored event delivered to the customer carries
its seq, which moves `last_seq` up; an event that changes who is in the customer's rooms
(`MEMBERSHIP`) makes the worker forget the view, and the next connect reads it again. A read
that an envelope for the customer overtakes is not kept (it may predate that event). A restart
starts with nothing remembered; views also expire (`TTL_S`), which bounds what a lost Redis
message could leave stale. When stale, a remembered `last_seq` can only be lower than the
store's (an update missed, never one invented): a resume from it replays a few events twice.

Agents are not remembered: they get events of rooms they are not in (the agents' copy of room
events) which they may not replay, and there are few of them.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass, replace

import orjson

from serving.chat.auth import BOT_USER_ID, Identity, Role
from serving.chat.broker import Envelope
from serving.chat.context import EventBus
from serving.chat.store import ChatStore

# Events that change a room's members (or whether it is live): the recipients' peers change.
MEMBERSHIP = frozenset(
    {
        "room_created",
        "member_joined",
        "member_left",
        "support_request_created",
        "support_request_assigned",
    }
)
CAPACITY = 50_000  # customers remembered (least recently connected forgotten first): ~10 MB
TTL_S = 300.0


@dataclass(frozen=True, slots=True)
class UserView:
    """What a connect tells and announces: the user's welcome seq and presence peers."""

    last_seq: int  # the newest seq among the events the user may replay (0: none)
    peers: frozenset[str]  # everyone sharing a live room with the user, the user included


@dataclass(slots=True)
class _Remembered:
    view: UserView
    until: float  # monotonic time it expires


ReadView = Callable[[Identity], Awaitable[UserView]]


def stored_event(frame: str) -> tuple[str, int] | None:
    """A frame's type and seq when it carries a stored event; None for typing, presence…"""
    document = orjson.loads(frame)
    seq = document.get("data", {}).get("seq")
    return (document["type"], seq) if isinstance(seq, int) else None


class UserViews:
    """This worker's memory of customers' views, kept current by every envelope it hears."""

    def __init__(
        self,
        read: ReadView,
        capacity: int = CAPACITY,
        ttl_s: float = TTL_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """`read`: the store read of one user's view (run off the event loop)."""
        self._read = read
        self.capacity, self.ttl_s, self._clock = capacity, ttl_s, clock
        self._views: OrderedDict[str, _Remembered] = OrderedDict()
        self._reading: dict[str, int] = {}  # reads in flight per user
        self._overtaken: set[str] = set()  # users an envelope reached during such a read
        self.reads = 0  # store reads done (tests, and to see what the memory saves)

    def __len__(self) -> int:
        return len(self._views)

    async def view(self, identity: Identity) -> UserView:
        """The user's view: from memory when remembered, else read (and remembered)."""
        user_id = identity.user_id
        remembered = self._views.get(user_id)
        if remembered is not None:
            if remembered.until > self._clock():
                self._views.move_to_end(user_id)
                return remembered.view
            del self._views[user_id]
        if identity.role is not Role.CUSTOMER:
            self.reads += 1
            return await self._read(identity)
        return await self._read_and_remember(identity)

    async def _read_and_remember(self, identity: Identity) -> UserView:
        user_id = identity.user_id
        self._reading[user_id] = self._reading.get(user_id, 0) + 1
        try:
            self.reads += 1
            view = await self._read(identity)
        finally:
            left = self._reading.pop(user_id) - 1
            if left:
                self._reading[user_id] = left
            overtaken = user_id in self._overtaken
            if not left:
                self._overtaken.discard(user_id)
        if not overtaken:
            self._views[user_id] = _Remembered(view, self._clock() + self.ttl_s)
            self._views.move_to_end(user_id)
            while len(self._views) > self.capacity:
                self._views.popitem(last=False)
        return view

    def heard(self, envelope: Envelope) -> None:
        """Apply an envelope to the views of its recipients (before it is delivered)."""
        concerned = [
            user_id
            for user_id in envelope.user_ids
            if user_id in self._views or user_id in self._reading
        ]
        if not concerned:
            return
        event = stored_event(envelope.frame)
        if event is None:
            return  # not stored, not replayable: no seq to move to
        event_type, seq = event
        for user_id in concerned:
            if user_id in self._reading:
                self._overtaken.add(user_id)
            remembered = self._views.get(user_id)
            if remembered is None:
                continue
            if event_type in MEMBERSHIP:
                del self._views[user_id]
            elif seq > remembered.view.last_seq:
                remembered.view = replace(remembered.view, last_seq=seq)


def read_view(store: ChatStore, identity: Identity) -> UserView:
    """The user's view read from the store (blocking: run it on a reader thread)."""
    last_seq = store.events.last_seq_for(identity)
    return UserView(last_seq, frozenset(store.rooms.peers(identity.user_id)))


async def announce_presence(
    events: EventBus, identity: Identity, status: str, peers: Iterable[str]
) -> None:
    """Tell everyone sharing a room with the user (and the agents) about their status."""
    recipients = {identity.user_id, *peers}
    recipients.discard(BOT_USER_ID)
    await events.ephemeral(
        "presence_update", {"user_id": identity.user_id, "status": status}, recipients, ("agent",)
    )

"""The views of users connecting together, read from the store in one call.

A burst of connections (500 customers arriving at once) asked the store for one view each: three
queries and a hand-off to a reader thread per socket. Here the views asked for while a read runs
wait for the next one, which reads them all with three queries whatever their number (at most
`MOST` users a call). The queries are those of `EventLog.last_seq_for` and `RoomStore.peers`
asked for many users at once; tests/serving/chat/test_presence.py checks they answer alike.
"""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Awaitable, Callable, Sequence

import sqlalchemy as sa

from conversations import tables
from serving.chat.auth import Identity, Role
from serving.chat.event_log import AGENTS_AUDIENCE, room_audience, user_audience
from serving.chat.presence import UserView
from serving.chat.store import ChatStore

MOST = 200  # users a read asks for: a few hundred bound parameters at most per query


def read_views(store: ChatStore, identities: Sequence[Identity]) -> list[UserView]:
    """Each user's view, in order (blocking: run it on a reader thread)."""
    members, rooms, events = tables.room_members, tables.rooms, tables.events
    user_ids = sorted({identity.user_id for identity in identities})
    live = (
        sa.select(members.c.user_id, members.c.room_id)
        .join(rooms, rooms.c.room_id == members.c.room_id)
        .where(members.c.user_id.in_(user_ids), rooms.c.deleted_at.is_(None))
    )
    with store.engine.connect() as connection:
        rooms_of: defaultdict[str, set[str]] = defaultdict(set)
        for user_id, room_id in connection.execute(live):
            rooms_of[user_id].add(room_id)
        room_ids = sorted({room for joined in rooms_of.values() for room in joined})
        members_of: defaultdict[str, set[str]] = defaultdict(set)
        if room_ids:
            query = sa.select(members.c.room_id, members.c.user_id).where(
                members.c.room_id.in_(room_ids)
            )
            for room_id, user_id in connection.execute(query):
                members_of[room_id].add(user_id)
        audiences = {user_audience(user_id) for user_id in user_ids}
        audiences |= {room_audience(room_id) for room_id in room_ids}
        if any(identity.role is Role.AGENT for identity in identities):
            audiences.add(AGENTS_AUDIENCE)
        newest_query = (
            sa.select(events.c.audience, sa.func.max(events.c.seq))
            .where(events.c.audience.in_(sorted(audiences)))
            .group_by(events.c.audience)
        )
        newest = {audience: int(seq) for audience, seq in connection.execute(newest_query)}
    views = []
    for identity in identities:
        user_id = identity.user_id
        own = [user_audience(user_id), *(room_audience(r) for r in rooms_of[user_id])]
        if identity.role is Role.AGENT:
            own.append(AGENTS_AUDIENCE)
        peers = frozenset(peer for room in rooms_of[user_id] for peer in members_of[room])
        views.append(UserView(max((newest.get(a, 0) for a in own), default=0), peers))
    return views


ReadMany = Callable[[list[Identity]], Awaitable[list[UserView]]]


class BatchedReads:
    """One read at a time; the views asked for meanwhile are read together by the next."""

    def __init__(self, read_many: ReadMany, most: int = MOST) -> None:
        """`read_many`: `read_views` off the event loop."""
        self._read_many = read_many
        self.most = most
        self._waiting: list[tuple[Identity, asyncio.Future[UserView]]] = []
        self._reader: asyncio.Task[None] | None = None
        self.calls = 0  # store calls made (tests)

    async def read(self, identity: Identity) -> UserView:
        """The user's view, read with those of whoever else is waiting."""
        future: asyncio.Future[UserView] = asyncio.get_running_loop().create_future()
        self._waiting.append((identity, future))
        if self._reader is None or self._reader.done():
            self._reader = asyncio.create_task(self._read_waiting())
        return await future

    async def _read_waiting(self) -> None:
        while self._waiting:
            batch, self._waiting = self._waiting[: self.most], self._waiting[self.most :]
            self.calls += 1
            try:
                views = await self._read_many([identity for identity, _ in batch])
            except Exception as exc:  # every waiting connect gets the store's error
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), view in zip(batch, views, strict=True):
                if not future.done():
                    future.set_result(view)

"""The chat event log (`chat_events`): every state change in one global order, for resume.

An event's `seq` is what clients resume from; its audience says who may replay it.
Blocking; call from a thread.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conversations import tables
from serving.chat import statements
from serving.chat.auth import Identity, Role
from serving.chat.rooms import RoomStore, now, writes

AGENTS_AUDIENCE = "role:agent"
# Key of the PostgreSQL advisory lock that puts event commits in seq order (any constant).
EVENT_ORDER_LOCK = 0x63686174  # "chat"


def room_audience(room_id: str) -> str:
    """The event audience of a room's members."""
    return f"room:{room_id}"


def user_audience(user_id: str) -> str:
    """The event audience of one user."""
    return f"user:{user_id}"


@dataclass(frozen=True)
class StoredEvent:
    """A replayed event: its frame type and its data (wire JSON, `seq` included)."""

    type: str
    data: dict[str, Any]


class EventLog:
    """Appends and replays events (one short transaction each)."""

    def __init__(self, engine: sa.Engine, rooms: RoomStore) -> None:
        self.engine = engine
        self.rooms = rooms

    def append(
        self,
        connection: sa.Connection,
        audience: str,
        event_type: str,
        data: Mapping[str, Any],
    ) -> int:
        """Store an event inside the caller's transaction; returns its seq."""
        self.lock_order(connection)
        row = {"audience": audience, "event_type": event_type, "payload": json.dumps(data)}
        return statements.INSERT_EVENT.execute(connection, {**row, "ts": now()})

    @staticmethod
    def lock_order(connection: sa.Connection) -> None:
        """On PostgreSQL, hold the event-order lock until the caller's transaction ends.

        A sequence hands out seqs at insert, not at commit: without this, a later seq from
        another worker could commit first, a client resume after it, and the earlier event never
        reach it. Held to commit, the lock makes seq order commit order (as SQLite's single
        writer does). A transaction that locks rows and appends an event takes it before the
        rows: taken after them, it deadlocks with a group commit already holding it that waits
        for one of those rows. Taking it again in the same transaction is free of waits.
        """
        if connection.dialect.name == "postgresql":
            connection.execute(sa.select(sa.func.pg_advisory_xact_lock(EVENT_ORDER_LOCK)))

    @writes
    def append_event(self, audience: str, event_type: str, data: Mapping[str, Any]) -> int:
        """Store an event for replay in its own transaction; returns its seq."""
        with self.engine.begin() as connection:
            return self.append(connection, audience, event_type, data)

    def last_seq(self) -> int:
        """The newest seq of the whole store (0 when there is none); never for clients."""
        with self.engine.connect() as connection:
            return int(connection.scalar(sa.select(sa.func.max(tables.events.c.seq))) or 0)

    def _audiences(self, identity: Identity) -> list[str]:
        """Every audience whose events the user may replay."""
        audiences = [user_audience(identity.user_id)]
        audiences += [room_audience(room) for room in self.rooms.user_rooms(identity.user_id)]
        if identity.role is Role.AGENT:
            audiences.append(AGENTS_AUDIENCE)
        return audiences

    def last_seq_for(self, identity: Identity) -> int:
        """The newest seq among the events the user may replay (0 when there is none).

        What `welcome` tells a client: the store's newest seq would tell any customer how much
        traffic the whole platform carries. Resuming from this seq replays nothing they may see.
        """
        events = tables.events
        query = sa.select(sa.func.max(events.c.seq)).where(
            events.c.audience.in_(self._audiences(identity))
        )
        with self.engine.connect() as connection:
            return int(connection.scalar(query) or 0)

    def replay(self, identity: Identity, last_seq: int, limit: int) -> list[StoredEvent]:
        """Events after `last_seq` this user may see, oldest first, each with its seq."""
        audiences = self._audiences(identity)
        query = (
            sa.select(tables.events)
            .where(tables.events.c.seq > last_seq, tables.events.c.audience.in_(audiences))
            .order_by(tables.events.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            StoredEvent(row["event_type"], {**json.loads(row["payload"]), "seq": row["seq"]})
            for row in rows
        ]

    def room_history(self, room_id: str, limit: int) -> list[dict[str, Any]]:
        """The newest messages of a room, oldest first, as the `room_history` frame lists them."""
        query = (
            sa.select(tables.events)
            .where(
                tables.events.c.audience == room_audience(room_id),
                tables.events.c.event_type.in_(("new_message", "bot_reply")),
            )
            .order_by(tables.events.c.seq.desc())
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            {**json.loads(row["payload"]), "seq": row["seq"], "type": row["event_type"]}
            for row in reversed(rows)
        ]

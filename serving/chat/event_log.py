"""The chat event log (`chat_events`): every state change in one global order, for resume.

An event's `seq` is what clients resume from; its audience says who may replay it. A client that
saw seq n resumes after n, so no event may commit with a seq below one already committed:

- SQLite has one writer at a time: an event gets its seq when it is appended.
- On PostgreSQL a sequence hands out seqs at insert, not at commit, and workers write at once. So a
  transaction's events wait in memory (`append`) and get their seqs at its end (`write_pending`,
  run by `transaction` before the commit), under an advisory lock held to the commit: seq order is
  commit order, and the lock is held for two inserts and the commit, not for the transaction's
  other work (a whole group commit's jobs used to run inside it). It is the last lock a
  transaction takes, and one holding it waits for no row: no deadlock with a transaction that
  holds a room's row and waits for it (found in CI when the lock came first: bb01fbb).

Blocking; call from a thread.
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping, MutableMapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from conversations import tables
from serving.chat import statements
from serving.chat.auth import Identity, Role
from serving.chat.rooms import RoomStore, now, writes

AGENTS_AUDIENCE = "role:agent"
# Key of the PostgreSQL advisory lock that puts event commits in seq order (any constant).
EVENT_ORDER_LOCK = 0x63686174  # "chat"
_LOCK_ORDER = sa.select(sa.func.pg_advisory_xact_lock(EVENT_ORDER_LOCK))
# `connection.info` key of a PostgreSQL transaction's events waiting for their seqs.
_PENDING = "chat_pending_events"


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


@dataclass(eq=False)
class EventSeq:
    """An appended event's seq: on PostgreSQL known once its transaction wrote its events."""

    # The caller's event data, which gets the seq under "seq" when it is known.
    stamp: MutableMapping[str, Any] | None = None
    _value: int = 0

    @classmethod
    def known(cls, seq: int) -> EventSeq:
        """A seq read back from the store."""
        return cls(None, seq)

    @property
    def value(self) -> int:
        """The seq (an error before the transaction wrote the event: read it after commit)."""
        if not self._value:
            raise RuntimeError("the event's seq is given when its transaction writes it")
        return self._value

    def give(self, seq: int) -> None:
        """Set the seq (and the caller's data's "seq")."""
        self._value = seq
        if self.stamp is not None:
            self.stamp["seq"] = seq


@dataclass
class _Pending:
    row: dict[str, Any]  # the chat_events row, without its seq
    seq: EventSeq
    message: dict[str, Any] | None = field(default=None)  # its chat_messages row, without seq


@contextmanager
def transaction(engine: sa.Engine) -> Iterator[sa.Connection]:
    """`engine.begin()` for transactions that append events: on PostgreSQL their events are
    written (`write_pending`) just before the commit; a transaction that raises writes none."""
    with engine.begin() as connection:
        if connection.dialect.name == "sqlite":
            yield connection
            return
        connection.info[_PENDING] = []
        try:
            yield connection
            write_pending(connection)
        finally:
            connection.info.pop(_PENDING, None)


def write_pending(connection: sa.Connection) -> None:
    """Give the transaction's waiting events their seqs and write them, with the message rows
    that record those seqs; the event-order lock is held from here to the commit."""
    pending: list[_Pending] = connection.info.get(_PENDING) or []
    if not pending:
        return
    connection.execute(_LOCK_ORDER)
    # One statement for all of them; seqs come back in the rows' order.
    seqs = connection.execute(statements.INSERT_EVENTS, [p.row for p in pending]).scalars().all()
    messages = []
    for item, seq in zip(pending, seqs, strict=True):
        item.seq.give(seq)
        if item.message is not None:
            messages.append({**item.message, "seq": seq})
    if messages:
        connection.execute(statements.INSERT_CHAT_MESSAGES, messages)
    pending.clear()


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
        message: Mapping[str, Any] | None = None,
        stamp: MutableMapping[str, Any] | None = None,
    ) -> EventSeq:
        """Store an event inside the caller's transaction (opened by `transaction`).

        `message`: the `chat_messages` row of the message the event carries, written with its
        seq; `stamp`: a mapping (the caller's event) to give the seq under "seq". On PostgreSQL
        both happen when the transaction writes its events, just before it commits: read the
        seq after the commit.
        """
        row: dict[str, Any] = {"audience": audience, "event_type": event_type, "ts": now()}
        row["payload"] = json.dumps(data)
        seq = EventSeq(stamp)
        if connection.dialect.name == "sqlite":
            seq.give(statements.INSERT_EVENT.execute(connection, row))
            if message is not None:
                statements.INSERT_CHAT_MESSAGE.execute(connection, {**message, "seq": seq.value})
            return seq
        pending = connection.info.get(_PENDING)
        if pending is None:
            raise RuntimeError("append events in event_log.transaction(), which writes them")
        pending.append(_Pending(row, seq, None if message is None else dict(message)))
        return seq

    def begin(self) -> AbstractContextManager[sa.Connection]:
        """A transaction that may append events (`transaction`)."""
        return transaction(self.engine)

    @writes
    def append_event(self, audience: str, event_type: str, data: Mapping[str, Any]) -> int:
        """Store an event for replay in its own transaction; returns its seq."""
        with self.begin() as connection:
            seq = self.append(connection, audience, event_type, data)
        return seq.value

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

"""Support requests: a customer's conversation with the bot, its hand-off, agent and resolution.

Statuses: `bot` (the bot answers) → `waiting_agent` (handed off) → `with_agent` → `resolved`.
"""

from __future__ import annotations

from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum
from typing import Any

import sqlalchemy as sa

from conversations import tables
from serving.chat.auth import BOT_USER_ID, Identity
from serving.chat.bot import HandoffReason
from serving.chat.protocol import RoomType
from serving.chat.rooms import RoomStore, new_id, now, writes


class SupportStatus(StrEnum):
    """Where a support request is in its life."""

    BOT = "bot"
    WAITING_AGENT = "waiting_agent"
    WITH_AGENT = "with_agent"
    RESOLVED = "resolved"


# Plain strings: they are bound into SQL, and not every driver adapts a str subclass. The store's
# unique index of open requests (conversations/tables.py) is defined over the same statuses.
OPEN_STATUSES = tables.OPEN_SUPPORT_STATUSES
HUMAN_STATUSES = (SupportStatus.WAITING_AGENT.value, SupportStatus.WITH_AGENT.value)
# Look-ups and inserts of `open_conversation`: a lost race costs one more; the winner's request
# would have to be resolved between our conflict and our look-up for a third to be needed.
_OPEN_ATTEMPTS = 3


@dataclass(frozen=True)
class SupportCase:
    """One support request (a row of `support_requests`); fields in the table's column order."""

    request_id: str
    room_id: str
    customer_id: str
    status: SupportStatus
    issue_type: str | None
    description: str | None
    handoff_reason: str | None
    handed_off_at: datetime | None
    escalations: int
    agent_id: str | None
    resolution: str | None
    rating: int | None
    created_at: datetime
    resolved_at: datetime | None
    escalation_reason: str | None

    @classmethod
    def from_row(cls, row: Any) -> SupportCase:
        """A request from a `support_requests` row mapping."""
        values = {name: row[name] for name in _CASE_FIELDS}
        return cls(**{**values, "status": SupportStatus(values["status"])})

    def to_wire(self) -> dict[str, Any]:
        """The request as clients get it (`support_queue`): every column, times in ISO 8601."""
        document: dict[str, Any] = {}
        for field in fields(self):
            value = getattr(self, field.name)
            if isinstance(value, datetime):
                value = value.isoformat()
            elif isinstance(value, StrEnum):
                value = value.value
            document[field.name] = value
        return document


def newest_request(connection: sa.Connection, where: sa.ColumnElement[bool]) -> SupportCase | None:
    """The newest request matching `where`, read inside the caller's transaction."""
    requests = tables.support_requests
    row = (
        connection.execute(
            sa.select(requests).where(where).order_by(requests.c.created_at.desc()).limit(1)
        )
        .mappings()
        .first()
    )
    return SupportCase.from_row(row) if row else None


_CASE_FIELDS = tuple(field.name for field in fields(SupportCase))  # once: read for every message


class SupportStore:
    """Support-request reads and writes (blocking; call from a thread)."""

    def __init__(self, engine: sa.Engine, rooms: RoomStore) -> None:
        self.engine = engine
        self.rooms = rooms

    def _one(self, where: sa.ColumnElement[bool]) -> SupportCase | None:
        with self.engine.connect() as connection:
            return newest_request(connection, where)

    def get(self, request_id: str) -> SupportCase | None:
        """One request, or None."""
        return self._one(tables.support_requests.c.request_id == request_id)

    def open_for_customer(self, customer_id: str) -> SupportCase | None:
        """The customer's unresolved request, or None."""
        requests = tables.support_requests
        return self._one(
            sa.and_(requests.c.customer_id == customer_id, requests.c.status.in_(OPEN_STATUSES))
        )

    def latest_for_room(self, room_id: str) -> SupportCase | None:
        """The newest request of a support room, resolved or not."""
        return self._one(tables.support_requests.c.room_id == room_id)

    def agent_queue(self, limit: int = 200) -> list[SupportCase]:
        """Requests a human has or should pick up, oldest hand-off first."""
        requests = tables.support_requests
        query = (
            sa.select(requests)
            .where(requests.c.status.in_(HUMAN_STATUSES))
            .order_by(requests.c.handed_off_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [SupportCase.from_row(row) for row in connection.execute(query).mappings()]

    @writes
    def open_conversation(
        self,
        customer: Identity,
        room_id: str | None = None,
        issue_type: str | None = None,
        description: str | None = None,
    ) -> tuple[SupportCase, bool]:
        """The customer's open request, else a new one (in `room_id` or a new support room).

        True with a request this call created. Workers race here: the store's unique index of
        open requests lets one insert win; the others roll back (their new room with them) and
        return the winner's request.
        """
        for _ in range(_OPEN_ATTEMPTS):
            existing = self.open_for_customer(customer.user_id)
            if existing is not None:
                return existing, False
            try:
                request_id = self._insert_request(customer, room_id, issue_type, description)
            except sa.exc.IntegrityError:
                continue  # another worker opened one since the look-up: read it
            request = self.get(request_id)
            assert request is not None
            return request, True
        raise RuntimeError(f"no open support request for {customer.user_id} after a conflict")

    def _insert_request(
        self,
        customer: Identity,
        room_id: str | None,
        issue_type: str | None,
        description: str | None,
    ) -> str:
        with self.engine.begin() as connection:
            return self.insert_request(connection, customer, room_id, issue_type, description)

    def insert_request(
        self,
        connection: sa.Connection,
        customer: Identity,
        room_id: str | None = None,
        issue_type: str | None = None,
        description: str | None = None,
    ) -> str:
        """A new bot-owned request (in `room_id` or a new support room) in the caller's
        transaction; its id. IntegrityError when the customer has an open one already."""
        request_id = new_id()
        if room_id is None:
            room_id = self.rooms.insert_room(
                connection,
                f"support for {customer.user_id}",
                RoomType.SUPPORT,
                customer,
                [BOT_USER_ID],
            )
        connection.execute(
            sa.insert(tables.support_requests).values(
                request_id=request_id,
                room_id=room_id,
                customer_id=customer.user_id,
                status=SupportStatus.BOT.value,
                issue_type=issue_type,
                description=description,
                created_at=now(),
            )
        )
        return request_id

    def _update(self, request_id: str, where: sa.ColumnElement[bool] | None, **values: Any) -> bool:
        requests = tables.support_requests
        query = sa.update(requests).where(requests.c.request_id == request_id)
        if where is not None:
            query = query.where(where)
        with self.engine.begin() as connection:
            return connection.execute(query.values(**values)).rowcount > 0

    @writes
    def hand_off(self, request_id: str, reason: str) -> bool:
        """Move a bot conversation to the agent queue; False when a human already has it."""
        return self._update(
            request_id,
            tables.support_requests.c.status == SupportStatus.BOT.value,
            status=SupportStatus.WAITING_AGENT.value,
            handoff_reason=reason,
            handed_off_at=now(),
        )

    @writes
    def escalate(self, request_id: str, reason: str) -> None:
        """Count an escalation; a bot conversation goes to the agent queue with it.

        `handoff_reason` takes the code `escalated` (a HandoffReason, 64 characters at most);
        the customer's words, up to 2,000 characters, are kept in `escalation_reason`.
        """
        requests = tables.support_requests
        self.hand_off(request_id, HandoffReason.ESCALATED.value)
        self._update(
            request_id,
            None,
            escalations=requests.c.escalations + 1,
            escalation_reason=sa.func.coalesce(reason or None, requests.c.escalation_reason),
        )

    @writes
    def assign(self, request_id: str, agent_id: str) -> bool:
        """An agent takes an open request."""
        requests = tables.support_requests
        return self._update(
            request_id,
            requests.c.status.in_(OPEN_STATUSES),
            status=SupportStatus.WITH_AGENT.value,
            agent_id=agent_id,
            handed_off_at=sa.func.coalesce(requests.c.handed_off_at, now()),
            handoff_reason=sa.func.coalesce(
                requests.c.handoff_reason, HandoffReason.AGENT_JOINED.value
            ),
        )

    @writes
    def resolve(self, request_id: str, agent_id: str, resolution: str) -> bool:
        """Close a request; False when it was already resolved."""
        requests = tables.support_requests
        return self._update(
            request_id,
            requests.c.status != SupportStatus.RESOLVED.value,
            status=SupportStatus.RESOLVED.value,
            agent_id=sa.func.coalesce(requests.c.agent_id, agent_id),
            resolution=resolution,
            resolved_at=now(),
        )

    @writes
    def rate(self, request_id: str, rating: int) -> None:
        """The customer's satisfaction rating (1-5)."""
        self._update(request_id, None, rating=rating)

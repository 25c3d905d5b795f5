"""Support requests: a customer's conversation with the bot, its hand-off, agent and resolution.

Statuses: `bot` (the bot answers) → `waiting_agent` (handed off) → `with_agent` → `resolved`.
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa

from conversations import tables
from serving.chat.auth import BOT_USER_ID, Identity
from serving.chat.rooms import RoomStore, new_id, now, writes

OPEN_STATUSES = ("bot", "waiting_agent", "with_agent")


class SupportStore:
    """Support-request reads and writes (blocking; call from a thread)."""

    def __init__(self, engine: sa.Engine, rooms: RoomStore) -> None:
        self.engine = engine
        self.rooms = rooms

    def _one(self, where: sa.ColumnElement[bool]) -> dict[str, Any] | None:
        requests = tables.support_requests
        with self.engine.connect() as connection:
            row = (
                connection.execute(
                    sa.select(requests).where(where).order_by(requests.c.created_at.desc()).limit(1)
                )
                .mappings()
                .first()
            )
        return _public(row) if row else None

    def get(self, request_id: str) -> dict[str, Any] | None:
        """One request, or None."""
        return self._one(tables.support_requests.c.request_id == request_id)

    def open_for_customer(self, customer_id: str) -> dict[str, Any] | None:
        """The customer's unresolved request, or None."""
        requests = tables.support_requests
        return self._one(
            sa.and_(requests.c.customer_id == customer_id, requests.c.status.in_(OPEN_STATUSES))
        )

    def latest_for_room(self, room_id: str) -> dict[str, Any] | None:
        """The newest request of a support room, resolved or not."""
        return self._one(tables.support_requests.c.room_id == room_id)

    def agent_queue(self, limit: int = 200) -> list[dict[str, Any]]:
        """Requests a human has or should pick up, oldest hand-off first."""
        requests = tables.support_requests
        query = (
            sa.select(requests)
            .where(requests.c.status.in_(("waiting_agent", "with_agent")))
            .order_by(requests.c.handed_off_at)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            return [_public(row) for row in connection.execute(query).mappings()]

    @writes
    def open_conversation(
        self,
        customer: Identity,
        room_id: str | None = None,
        issue_type: str | None = None,
        description: str | None = None,
    ) -> tuple[dict[str, Any], bool]:
        """The customer's open request, else a new one (in `room_id` or a new support room)."""
        existing = self.open_for_customer(customer.user_id)
        if existing is not None:
            return existing, False
        if room_id is None:
            room = self.rooms.create_room(
                f"support for {customer.user_id}", "support", customer, [BOT_USER_ID]
            )
            room_id = room["room_id"]
        request_id = new_id()
        with self.engine.begin() as connection:
            connection.execute(
                sa.insert(tables.support_requests).values(
                    request_id=request_id,
                    room_id=room_id,
                    customer_id=customer.user_id,
                    status="bot",
                    issue_type=issue_type,
                    description=description,
                    created_at=now(),
                )
            )
        request = self.get(request_id)
        assert request is not None
        return request, True

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
            tables.support_requests.c.status == "bot",
            status="waiting_agent",
            handoff_reason=reason,
            handed_off_at=now(),
        )

    @writes
    def escalate(self, request_id: str, reason: str) -> None:
        """Count an escalation; a bot conversation goes to the agent queue with it."""
        requests = tables.support_requests
        self.hand_off(request_id, reason or "escalated")
        self._update(request_id, None, escalations=requests.c.escalations + 1)

    @writes
    def assign(self, request_id: str, agent_id: str) -> bool:
        """An agent takes an open request."""
        requests = tables.support_requests
        return self._update(
            request_id,
            requests.c.status.in_(OPEN_STATUSES),
            status="with_agent",
            agent_id=agent_id,
            handed_off_at=sa.func.coalesce(requests.c.handed_off_at, now()),
            handoff_reason=sa.func.coalesce(requests.c.handoff_reason, "agent_joined"),
        )

    @writes
    def resolve(self, request_id: str, agent_id: str, resolution: str) -> bool:
        """Close a request; False when it was already resolved."""
        requests = tables.support_requests
        return self._update(
            request_id,
            requests.c.status != "resolved",
            status="resolved",
            agent_id=sa.func.coalesce(requests.c.agent_id, agent_id),
            resolution=resolution,
            resolved_at=now(),
        )

    @writes
    def rate(self, request_id: str, rating: int) -> None:
        """The customer's satisfaction rating (1-5)."""
        self._update(request_id, None, rating=rating)


def _public(row: Any) -> dict[str, Any]:
    document = dict(row)
    for key in ("created_at", "resolved_at", "handed_off_at"):
        if document.get(key) is not None:
            document[key] = document[key].isoformat()
    return document

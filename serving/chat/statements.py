"""The SQL of a bot turn's hot path, built once and executed with named parameters.

SQLAlchemy builds and keys a statement each time one is written as `.where(column == value)` or
`.values(...)`: for a chat message that cost more CPU than SQLite's own work. Measured on this
machine, an insert built per call took ~0.9 ms, the same insert built once ~0.15 ms
(bench/README.md, chat section). Rows are the same either way.
"""

from __future__ import annotations

import sqlalchemy as sa

from conversations import tables

_rooms, _members, _messages = tables.rooms, tables.room_members, tables.messages
_requests, _events = tables.support_requests, tables.events

# serving/chat/store.py: a message's transaction.
LOCK_ROOM = (
    sa.select(_rooms.c.room_id).where(_rooms.c.room_id == sa.bindparam("room_id")).with_for_update()
)
TURN_AND_START = sa.select(sa.func.count(), sa.func.min(_messages.c.ts)).where(
    _messages.c.conversation_id == sa.bindparam("room_id")
)
INSERT_CHAT_MESSAGE = sa.insert(tables.chat_messages)
# serving/chat/event_log.py
INSERT_EVENT = sa.insert(_events)
# serving/chat/rooms.py: a live room with its members, one row per member (oldest first), in
# one statement: the room and its members were two for every customer message.
LIVE_ROOM_MEMBERS = (
    sa.select(_rooms, _members.c.user_id.label("member_id"))
    .select_from(_rooms.outerjoin(_members, _members.c.room_id == _rooms.c.room_id))
    .where(_rooms.c.room_id == sa.bindparam("room_id"), _rooms.c.deleted_at.is_(None))
    .order_by(_members.c.joined_at, _members.c.user_id)
)
MEMBER_IDS = (
    sa.select(_members.c.user_id)
    .where(_members.c.room_id == sa.bindparam("room_id"))
    .order_by(_members.c.joined_at, _members.c.user_id)
)
# serving/chat/turns.py: the customer's open request, a room's newest one, a request's status.
# `status = a OR status = b ...`, not `IN (...)`: an IN list is re-rendered at every execution.
OPEN_REQUEST = (
    sa.select(_requests)
    .where(
        _requests.c.customer_id == sa.bindparam("customer_id"),
        sa.or_(*(_requests.c.status == status for status in tables.OPEN_SUPPORT_STATUSES)),
    )
    .order_by(_requests.c.created_at.desc())
    .limit(1)
)
ROOM_REQUEST = (
    sa.select(_requests)
    .where(_requests.c.room_id == sa.bindparam("room_id"))
    .order_by(_requests.c.created_at.desc())
    .limit(1)
)
REQUEST_STATUS = sa.select(_requests.c.status).where(
    _requests.c.request_id == sa.bindparam("request_id")
)

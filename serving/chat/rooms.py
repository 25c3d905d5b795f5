"""Rooms and their members. Rules (from the design): private rooms are invite-only, direct
rooms cannot be left, when the creator leaves the next member becomes creator, and a room whose
last person leaves is deleted (soft: its messages stay training data).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ParamSpec, TypeVar

import sqlalchemy as sa

from conversations import tables
from serving.chat import statements
from serving.chat.auth import BOT_USER_ID, Identity
from serving.chat.protocol import RoomType

P = ParamSpec("P")
R = TypeVar("R")


def now() -> datetime:
    """The current time in UTC."""
    return datetime.now(UTC)


def new_id() -> str:
    """A fresh opaque id."""
    return uuid.uuid4().hex


def writes(method: Callable[P, R]) -> Callable[P, R]:
    """Mark a store method that writes: the hub runs those on its single writer thread."""
    method.writes = True  # type: ignore[attr-defined]
    return method


@dataclass(frozen=True)
class Room:
    """A live room and its member ids (oldest member first)."""

    room_id: str
    name: str
    room_type: RoomType
    creator_id: str | None
    created_at: datetime
    member_ids: tuple[str, ...]


@dataclass(frozen=True)
class Departure:
    """What a member leaving did to the room: who is creator now, who is left, or deleted."""

    deleted: bool
    creator_id: str | None
    member_ids: tuple[str, ...]


class RoomStore:
    """Room reads and writes, one short transaction each (blocking; call from a thread)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def user_rooms(self, user_id: str) -> list[str]:
        """Ids of the live rooms a user belongs to."""
        members, rooms = tables.room_members, tables.rooms
        query = (
            sa.select(members.c.room_id)
            .join(rooms, rooms.c.room_id == members.c.room_id)
            .where(members.c.user_id == user_id, rooms.c.deleted_at.is_(None))
        )
        with self.engine.connect() as connection:
            return list(connection.scalars(query))

    def peers(self, user_id: str) -> list[str]:
        """Everyone who shares a live room with the user, the user included.

        One query however many rooms: a presence change must not cost a query per room joined.
        """
        members, rooms = tables.room_members, tables.rooms
        shared = (
            sa.select(members.c.room_id)
            .join(rooms, rooms.c.room_id == members.c.room_id)
            .where(members.c.user_id == user_id, rooms.c.deleted_at.is_(None))
        )
        query = sa.select(members.c.user_id).where(members.c.room_id.in_(shared)).distinct()
        with self.engine.connect() as connection:
            return list(connection.scalars(query))

    def room(self, room_id: str) -> Room | None:
        """A live room with its member ids, or None."""
        with self.engine.connect() as connection:
            return self.room_in(connection, room_id)

    def room_in(self, connection: sa.Connection, room_id: str) -> Room | None:
        """`room`, read inside the caller's transaction."""
        query = statements.LIVE_ROOM_MEMBERS
        rows = query.all(connection, {"room_id": room_id})
        if not rows:
            return None
        room = dict(zip(query.names, rows[0], strict=True))
        member = query.names.index("member_id")
        return Room(
            room_id=room["room_id"],
            name=room["name"],
            room_type=RoomType(room["room_type"]),
            creator_id=room["creator_id"],
            created_at=room["created_at"],
            member_ids=tuple(row[member] for row in rows if row[member] is not None),
        )

    def _member_ids(self, connection: sa.Connection, room_id: str) -> tuple[str, ...]:
        return tuple(connection.scalars(statements.MEMBER_IDS, {"room_id": room_id}))

    @writes
    def create_room(
        self, name: str, room_type: RoomType, creator: Identity, member_ids: list[str]
    ) -> Room:
        """A new room with its creator and members."""
        with self.engine.begin() as connection:
            room_id = self.insert_room(connection, name, room_type, creator, member_ids)
        room = self.room(room_id)
        assert room is not None
        return room

    def insert_room(
        self,
        connection: sa.Connection,
        name: str,
        room_type: RoomType,
        creator: Identity,
        member_ids: list[str],
    ) -> str:
        """Insert a room and its members inside the caller's transaction; returns its id."""
        room_id, ts = new_id(), now()
        connection.execute(
            sa.insert(tables.rooms).values(
                room_id=room_id,
                name=name,
                room_type=room_type.value,
                creator_id=creator.user_id,
                created_at=ts,
            )
        )
        roles = {creator.user_id: creator.role.value}
        for member in member_ids:
            roles.setdefault(member, "bot" if member == BOT_USER_ID else "member")
        connection.execute(
            sa.insert(tables.room_members),
            [
                {"room_id": room_id, "user_id": user, "role": role, "joined_at": ts}
                for user, role in roles.items()
            ],
        )
        return room_id

    @writes
    def add_member(self, room_id: str, identity: Identity) -> bool:
        """Add a member; False when already one."""
        try:
            with self.engine.begin() as connection:
                connection.execute(
                    sa.insert(tables.room_members).values(
                        room_id=room_id,
                        user_id=identity.user_id,
                        role=identity.role.value,
                        joined_at=now(),
                    )
                )
        except sa.exc.IntegrityError:
            return False
        return True

    @writes
    def remove_member(self, room_id: str, user_id: str) -> Departure:
        """Remove a member; hands the room to the next member or deletes it when empty."""
        members, rooms = tables.room_members, tables.rooms
        with self.engine.begin() as connection:
            connection.execute(
                sa.delete(members).where(members.c.room_id == room_id, members.c.user_id == user_id)
            )
            remaining = tuple(m for m in self._member_ids(connection, room_id) if m != BOT_USER_ID)
            creator = connection.scalar(
                sa.select(rooms.c.creator_id).where(rooms.c.room_id == room_id)
            )
            if not remaining:
                connection.execute(
                    sa.update(rooms).where(rooms.c.room_id == room_id).values(deleted_at=now())
                )
                return Departure(deleted=True, creator_id=None, member_ids=())
            if creator == user_id:
                creator = remaining[0]
                connection.execute(
                    sa.update(rooms).where(rooms.c.room_id == room_id).values(creator_id=creator)
                )
            return Departure(deleted=False, creator_id=creator, member_ids=remaining)

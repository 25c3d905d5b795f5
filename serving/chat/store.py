"""The chat tier's persistence: messages (in the schema the training loop reads), the event log
clients resume from, predictions, labels, and support requests. Blocking; call from a thread.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from conversations import tables
from conversations.schema import LabelSource, LabelTrust, Speaker
from serving.chat.auth import BOT_USER_ID, Identity, Role
from serving.chat.bot import Turn
from serving.chat.rooms import RoomStore, new_id, now, writes
from serving.chat.support import SupportStore

AGENTS_AUDIENCE = "role:agent"


def room_audience(room_id: str) -> str:
    """The event audience of a room's members."""
    return f"room:{room_id}"


def user_audience(user_id: str) -> str:
    """The event audience of one user."""
    return f"user:{user_id}"


@dataclass(frozen=True)
class StoredMessage:
    """A committed message and its `new_message` event."""

    message_id: str
    seq: int
    data: dict[str, Any]
    duplicate: bool


class ChatStore:
    """All chat-tier reads and writes, one short transaction each."""

    def __init__(self, url: str) -> None:
        self.engine = tables.create_engine(url)
        self.rooms = RoomStore(self.engine)
        self.support = SupportStore(self.engine, self.rooms)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    # --- events ---------------------------------------------------------------------------

    def _append_event(
        self, connection: sa.Connection, audience: str, event_type: str, data: dict[str, Any]
    ) -> int:
        result = connection.execute(
            sa.insert(tables.events).values(
                audience=audience, event_type=event_type, payload=json.dumps(data), ts=now()
            )
        )
        return int(result.inserted_primary_key[0])

    @writes
    def append_event(self, audience: str, event_type: str, data: dict[str, Any]) -> int:
        """Store an event for replay; returns its seq."""
        with self.engine.begin() as connection:
            return self._append_event(connection, audience, event_type, data)

    def last_seq(self) -> int:
        """The newest seq (0 when there is none)."""
        with self.engine.connect() as connection:
            return int(connection.scalar(sa.select(sa.func.max(tables.events.c.seq))) or 0)

    def replay(self, identity: Identity, last_seq: int, limit: int) -> list[dict[str, Any]]:
        """Events after `last_seq` this user may see, oldest first, each with its seq."""
        audiences = [user_audience(identity.user_id)]
        audiences += [room_audience(room) for room in self.rooms.user_rooms(identity.user_id)]
        if identity.role is Role.AGENT:
            audiences.append(AGENTS_AUDIENCE)
        query = (
            sa.select(tables.events)
            .where(tables.events.c.seq > last_seq, tables.events.c.audience.in_(audiences))
            .order_by(tables.events.c.seq)
            .limit(limit)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).mappings().all()
        return [
            {"type": row["event_type"], "data": {**json.loads(row["payload"]), "seq": row["seq"]}}
            for row in rows
        ]

    def room_history(self, room_id: str, limit: int) -> list[dict[str, Any]]:
        """The newest messages of a room, oldest first (what an agent sees on joining)."""
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

    # --- messages -------------------------------------------------------------------------

    @writes
    def insert_message(
        self,
        room_id: str,
        sender_id: str,
        role: str,
        content: str,
        client_msg_id: str | None,
        extra: dict[str, Any] | None = None,
    ) -> StoredMessage:
        """Commit a message, its training row and its event; a resent client_msg_id is found.

        Resends are rare, so there is no look-up first: the unique (sender, client_msg_id)
        constraint refuses the copy and the transaction rolls back.
        """
        try:
            with self.engine.begin() as connection:
                return self._insert_message(
                    connection, room_id, sender_id, role, content, client_msg_id, extra or {}
                )
        except sa.exc.IntegrityError:
            # A resend (or the same client_msg_id racing in on another connection).
            found = self._find_sent(sender_id, client_msg_id) if client_msg_id else None
            if found is None:
                raise
            return found

    def _insert_message(
        self,
        connection: sa.Connection,
        room_id: str,
        sender_id: str,
        role: str,
        content: str,
        client_msg_id: str | None,
        extra: dict[str, Any],
    ) -> StoredMessage:
        message_id, ts = new_id(), now()
        messages = tables.messages
        turn, first_ts = connection.execute(
            sa.select(sa.func.count(), sa.func.min(messages.c.ts)).where(
                messages.c.conversation_id == room_id
            )
        ).one()
        duration_s = (ts - _aware(first_ts)).total_seconds() if first_ts is not None else 0.0
        context = {"session": {"message_count": int(turn), "duration_s": round(duration_s, 3)}}
        connection.execute(
            sa.insert(messages).values(
                message_id=message_id,
                conversation_id=room_id,
                turn=int(turn),
                ts=ts,
                speaker=Speaker(role).value,
                user_id=sender_id,
                channel="chat",
                text=content,
                intent=None,
                label_source=LabelSource.NONE.value,
                context=json.dumps(context),
            )
        )
        data = {
            "message_id": message_id,
            "room_id": room_id,
            "sender_id": sender_id,
            "role": role,
            "content": content,
            "ts": ts.isoformat(),
            **({"client_msg_id": client_msg_id} if client_msg_id else {}),
            **extra,
        }
        event_type = "bot_reply" if sender_id == BOT_USER_ID else "new_message"
        seq = self._append_event(connection, room_audience(room_id), event_type, data)
        connection.execute(
            sa.insert(tables.chat_messages).values(
                message_id=message_id,
                room_id=room_id,
                sender_id=sender_id,
                client_msg_id=client_msg_id,
                seq=seq,
            )
        )
        return StoredMessage(message_id, seq, {**data, "seq": seq}, duplicate=False)

    def _find_sent(self, sender_id: str, client_msg_id: str) -> StoredMessage | None:
        chat = tables.chat_messages
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(chat.c.message_id, chat.c.seq).where(
                    chat.c.sender_id == sender_id, chat.c.client_msg_id == client_msg_id
                )
            ).first()
        if row is None:
            return None
        return StoredMessage(row.message_id, int(row.seq), {}, duplicate=True)

    def message_info(self, message_id: str) -> dict[str, Any] | None:
        """Room, sender and text of a message, or None."""
        chat, messages = tables.chat_messages, tables.messages
        query = (
            sa.select(chat.c.room_id, chat.c.sender_id, messages.c.text, messages.c.speaker)
            .join(messages, messages.c.message_id == chat.c.message_id)
            .where(chat.c.message_id == message_id)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).mappings().first()
        return dict(row) if row else None

    @writes
    def record_prediction(
        self, message_id: str, prediction: dict[str, Any], polarity: float, subjectivity: float
    ) -> None:
        """Store what the model said about a message."""
        with self.engine.begin() as connection:
            connection.execute(
                sa.insert(tables.predictions).values(
                    message_id=message_id,
                    intent=prediction["intent"],
                    confidence=float(prediction["confidence"]),
                    fallback=bool(prediction["fallback"]),
                    model_name=prediction["model"]["name"],
                    model_version=str(prediction["model"]["version"]),
                    polarity=polarity,
                    subjectivity=subjectivity,
                    ts=now(),
                )
            )

    @writes
    def record_label(self, message_id: str, intent: str, agent_id: str, text: str) -> int:
        """An agent's label for a customer message (label_source `agent`)."""
        predicted = tables.predictions
        with self.engine.begin() as connection:
            predicted_intent = connection.scalar(
                sa.select(predicted.c.intent)
                .where(predicted.c.message_id == message_id)
                .order_by(predicted.c.prediction_id.desc())
                .limit(1)
            )
            result = connection.execute(
                sa.insert(tables.labels).values(
                    message_id=message_id,
                    text=text,
                    intent=intent,
                    label_source=LabelSource.AGENT.value,
                    predicted_intent=predicted_intent,
                    is_new_intent=False,
                    user_id=agent_id,
                    ts=now(),
                    trust=LabelTrust.AGENT.value,
                    labelled_by=agent_id,
                )
            )
            return int(result.inserted_primary_key[0])

    def customer_turns(self, room_id: str, since: datetime) -> list[Turn]:
        """The classified customer turns of a room since a time, oldest first."""
        messages, predicted = tables.messages, tables.predictions
        query = (
            sa.select(predicted.c.intent, predicted.c.fallback, predicted.c.polarity)
            .join(messages, messages.c.message_id == predicted.c.message_id)
            .where(
                messages.c.conversation_id == room_id,
                messages.c.speaker == Speaker.CUSTOMER.value,
                messages.c.ts >= since,
            )
            .order_by(messages.c.ts)
        )
        with self.engine.connect() as connection:
            rows = connection.execute(query).all()
        return [Turn(row.intent, bool(row.fallback), float(row.polarity or 0.0)) for row in rows]


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

"""The chat tier's persistence: messages (in the schema the training loop reads), predictions,
labels, and through its parts rooms, support requests and the event log. Blocking; call from a
thread.

Rows of `messages`, `predictions` and `labels` are written by conversations/writer.py.
"""

from __future__ import annotations

from collections.abc import MutableMapping
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, NotRequired, TypedDict, cast

import sqlalchemy as sa

from conversations import store_engine, tables
from conversations.schema import LabelSource, LabelTrust, Speaker
from conversations.writer import (
    LabelRecord,
    MessageRecord,
    PredictionRecord,
    insert_label,
    insert_prediction,
    message_row,
)
from serving.chat import history, statements
from serving.chat.auth import BOT_USER_ID
from serving.chat.bot import Turn
from serving.chat.classification import Classification
from serving.chat.dialogues import DialogueMemory
from serving.chat.event_log import EventLog, EventSeq, room_audience
from serving.chat.rooms import RoomStore, new_id, now, writes
from serving.chat.support import SupportStore


class MessageEvent(TypedDict):
    """The data of a `new_message` or `bot_reply` frame (wire JSON, in this key order)."""

    message_id: str
    room_id: str
    sender_id: str
    role: str
    content: str
    ts: str
    client_msg_id: NotRequired[str]
    # bot_reply only (BotReply.fields)
    intent: NotRequired[str | None]
    confidence: NotRequired[float | None]
    fallback: NotRequired[bool | None]
    model_version: NotRequired[str | None]
    action: NotRequired[str]
    frustration: NotRequired[float | None]
    reply_to: NotRequired[str | None]
    handoff_reason: NotRequired[str]
    top_k: NotRequired[list[dict[str, str | float]]]  # agents only, like the fields above
    seq: NotRequired[int]  # added once the event is stored


@dataclass(frozen=True)
class BotReply:
    """What a bot message says about the customer turn it answers."""

    action: str
    prediction: Classification | None = None
    frustration: float | None = None
    reply_to: str | None = None
    handoff_reason: str | None = None

    def add_to(self, event: MessageEvent) -> None:
        """Add the `bot_reply` fields to a message event."""
        prediction = self.prediction
        event["intent"] = prediction.intent if prediction else None
        event["confidence"] = prediction.confidence if prediction else None
        event["fallback"] = prediction.fallback if prediction else None
        event["model_version"] = prediction.model_version if prediction else None
        event["action"] = self.action
        event["frustration"] = self.frustration
        event["reply_to"] = self.reply_to
        if self.handoff_reason:
            event["handoff_reason"] = self.handoff_reason
        if prediction and prediction.top_k:
            event["top_k"] = [{"intent": i, "confidence": c} for i, c in prediction.top_k]


@dataclass(frozen=True)
class StoredMessage:
    """A committed message and its event (None for a resend found already stored)."""

    message_id: str
    event_seq: EventSeq
    event: MessageEvent | None
    # Where it stands in its room and the context stored with it (not known for a resend).
    turn: int = -1
    context: dict[str, Any] | None = None

    @property
    def seq(self) -> int:
        """The seq of the message's event (known once its transaction committed)."""
        return self.event_seq.value

    @property
    def duplicate(self) -> bool:
        """True when the message had been stored before (a resend)."""
        return self.event is None


@dataclass(frozen=True)
class MessageInfo:
    """Where a message was said, by whom, and what it says."""

    room_id: str
    sender_id: str
    text: str
    speaker: Speaker


class ChatStore:
    """All chat-tier reads and writes, one short transaction each."""

    def __init__(self, url: str) -> None:
        self.engine = store_engine.create_engine(url)
        self.rooms = RoomStore(self.engine)
        self.support = SupportStore(self.engine, self.rooms)
        self.events = EventLog(self.engine, self.rooms)
        # The bot conversations this worker wrote, for their next turn (writer thread only).
        self.dialogues = DialogueMemory()

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

    @writes
    def insert_message(
        self,
        room_id: str,
        sender_id: str,
        speaker: Speaker,
        content: str,
        client_msg_id: str | None,
        bot: BotReply | None = None,
    ) -> StoredMessage:
        """Commit a message, its training row and its event; a resent client_msg_id is found.

        Resends are rare, so there is no look-up first: the unique (sender, client_msg_id)
        constraint refuses the copy and the transaction rolls back.
        """
        try:
            with self.events.begin() as connection:
                return self.insert_message_in(
                    connection, room_id, sender_id, speaker, content, client_msg_id, bot
                )
        except sa.exc.IntegrityError:
            # A resend (or the same client_msg_id racing in on another connection).
            found = self.find_sent(sender_id, client_msg_id)
            if found is None:
                raise
            return found

    def insert_message_in(
        self,
        connection: sa.Connection,
        room_id: str,
        sender_id: str,
        speaker: Speaker,
        content: str,
        client_msg_id: str | None,
        bot: BotReply | None = None,
    ) -> StoredMessage:
        """`insert_message` inside the caller's transaction (a resend raises IntegrityError)."""
        message_id, ts = new_id(), now()
        # Workers and replicas write one room at once on PostgreSQL: holding the room's row until
        # commit numbers its turns once each (SQLite has one writer per file: not needed). The
        # event-order lock comes after it, at the commit (serving/chat/event_log.py).
        if connection.dialect.name != "sqlite":
            connection.execute(statements.LOCK_ROOM, {"room_id": room_id})
        counted = statements.TURN_AND_START.first(connection, {"room_id": room_id})
        assert counted is not None  # an aggregate always has its row
        turn, first_ts = counted
        duration_s = (ts - _aware(first_ts)).total_seconds() if first_ts is not None else 0.0
        context = {"session": {"message_count": int(turn), "duration_s": round(duration_s, 3)}}
        record = MessageRecord(
            message_id=message_id,
            conversation_id=room_id,
            turn=int(turn),
            ts=ts,
            speaker=speaker,
            user_id=sender_id,
            channel="chat",
            text=content,
            context=context,
        )
        statements.INSERT_MESSAGE.execute(connection, message_row(record))
        event = MessageEvent(
            message_id=message_id,
            room_id=room_id,
            sender_id=sender_id,
            role=speaker.value,
            content=content,
            ts=ts.isoformat(),
        )
        if client_msg_id:
            event["client_msg_id"] = client_msg_id
        if bot is not None:
            bot.add_to(event)
        event_type = "bot_reply" if sender_id == BOT_USER_ID else "new_message"
        row: dict[str, str | None] = {"message_id": message_id, "room_id": room_id}
        row |= {"sender_id": sender_id, "client_msg_id": client_msg_id}
        stamp = cast("MutableMapping[str, Any]", event)  # gets its "seq" with the seq
        audience = room_audience(room_id)
        seq = self.events.append(connection, audience, event_type, event, row, stamp)
        return StoredMessage(message_id, seq, event, int(turn), context)

    def find_sent(self, sender_id: str, client_msg_id: str | None) -> StoredMessage | None:
        """The stored copy of a message the sender sent before with this client_msg_id."""
        if not client_msg_id:
            return None
        chat = tables.chat_messages
        with self.engine.connect() as connection:
            row = connection.execute(
                sa.select(chat.c.message_id, chat.c.seq).where(
                    chat.c.sender_id == sender_id, chat.c.client_msg_id == client_msg_id
                )
            ).first()
        if row is None:
            return None
        return StoredMessage(row.message_id, EventSeq.known(int(row.seq)), None)

    def message_info(self, message_id: str) -> MessageInfo | None:
        """Room, sender and text of a message, or None."""
        chat, messages = tables.chat_messages, tables.messages
        query = (
            sa.select(chat.c.room_id, chat.c.sender_id, messages.c.text, messages.c.speaker)
            .join(messages, messages.c.message_id == chat.c.message_id)
            .where(chat.c.message_id == message_id)
        )
        with self.engine.connect() as connection:
            row = connection.execute(query).first()
        if row is None:
            return None
        return MessageInfo(row.room_id, row.sender_id, row.text, Speaker(row.speaker))

    @writes
    def record_prediction(
        self, message_id: str, prediction: Classification, polarity: float, subjectivity: float
    ) -> None:
        """Store what the model said about a message."""
        record = PredictionRecord(
            message_id=message_id,
            intent=prediction.intent,
            confidence=prediction.confidence,
            fallback=prediction.fallback,
            model_name=prediction.model_name,
            model_version=prediction.model_version,
            polarity=polarity,
            subjectivity=subjectivity,
            ts=now(),
            channel="chat",
        )
        with self.engine.begin() as connection:
            insert_prediction(connection, record)

    @writes
    def record_label(
        self, message_id: str, intent: str, agent_id: str, text: str, is_new_intent: bool = False
    ) -> int:
        """An agent's label for a customer message (label_source `agent`, trust `agent`)."""
        predicted = tables.predictions
        with self.engine.begin() as connection:
            predicted_intent = connection.scalar(
                sa.select(predicted.c.intent)
                .where(predicted.c.message_id == message_id)
                .order_by(predicted.c.prediction_id.desc())
                .limit(1)
            )
            label = LabelRecord(
                message_id=message_id,
                text=text,
                intent=intent,
                label_source=LabelSource.AGENT,
                predicted_intent=predicted_intent,
                user_id=agent_id,
                ts=now(),
                trust=LabelTrust.AGENT,
                labelled_by=agent_id,
                is_new_intent=is_new_intent,
            )
            return insert_label(connection, label)

    def customer_turns(self, room_id: str, since: datetime) -> list[Turn]:
        """The classified customer turns of a room since a time, oldest first."""
        with self.engine.connect() as connection:
            return history.customer_turns(connection, room_id, since)


def _aware(value: datetime) -> datetime:
    # SQLite hands timestamps back without their zone; they were written in UTC.
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)

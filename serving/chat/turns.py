"""A bot conversation's two writes, each one job of a group commit (serving/chat/group_commit.py).

1. `CustomerMessageJob`: the customer's message, its training row and its event, and in the same
   transaction what the bot needs to answer it (the room and its members, the support request,
   the turns so far and the model's context), so the `ack` follows one commit and the bot's
   turn starts without another trip to the store.
2. `BotReplyJob`: the prediction, the bot's reply and its event, together, while the bot still
   owns the conversation.

A customer's first message opens their conversation (a support room with the bot, a request and
its `support_request_created` event) inside the same job: the writer thread used to do that in two
transactions of its own, queued behind each other, while the loop's groups waited for SQLite's
write lock in its sleeping busy handler (bench/README.md, "Step 8": the paced run's slowest turns).

Blocking: they run on the store's writer inside a transaction the group commit opens.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import sqlalchemy as sa

from conversations.schema import Speaker
from conversations.writer import PredictionRecord, prediction_row
from serving.chat.auth import BOT_USER_ID, Identity, Role
from serving.chat.bot import Turn
from serving.chat.classification import Classification
from serving.chat.dialogues import RoomDialogue
from serving.chat.event_log import EventSeq, user_audience
from serving.chat.history import as_mapping, customer_turns, history_in
from serving.chat.protocol import ErrorCode, FrameError, RoomType
from serving.chat.rooms import Room, now
from serving.chat.statements import (
    INSERT_PREDICTION,
    OPEN_REQUEST,
    REQUEST_STATUS,
    ROOM_REQUEST,
    DriverRow,
)
from serving.chat.store import BotReply, ChatStore, StoredMessage
from serving.chat.support import SupportCase, SupportStatus

CREATED = "support_request_created"  # the event of a conversation opened


@dataclass(frozen=True)
class Opened:
    """The conversation a customer's first message opened, and its event's seq."""

    request: SupportCase
    # Of `support_request_created`, stored with the message; on PostgreSQL given at the commit.
    event_seq: EventSeq

    @property
    def seq(self) -> int:
        """The event's seq (read after the commit: it is delivered then)."""
        return self.event_seq.value

    @property
    def event(self) -> dict[str, str]:
        """The `support_request_created` event's data (without its seq)."""
        return _created(self.request)


@dataclass(frozen=True)
class CustomerMessage:
    """A stored message and, when the bot is to answer it, what it answers with."""

    room: Room
    stored: StoredMessage
    request: SupportCase | None = None  # set when the bot owns the conversation
    history: list[Turn] = field(default_factory=list)
    context: dict[str, Any] = field(default_factory=dict)
    opened: Opened | None = None  # set when this message opened the customer's conversation


@dataclass(frozen=True)
class CustomerMessageJob:
    """Store one message (room checks included); for the bot, read what it needs."""

    store: ChatStore
    identity: Identity
    room_id: str | None
    content: str
    client_msg_id: str | None

    def __call__(self, connection: sa.Connection) -> CustomerMessage:
        """Run inside the group's transaction.

        Without a room, the message goes to the customer's open request; with none, it opens
        one. Should another worker open the customer's at the same moment, the unique index of
        open requests fails this insert: the group rolls back and `alone` finds theirs.
        """
        identity = self.identity
        request, opened, room_id = None, None, self.room_id
        if room_id is None:
            request = _request(connection, OPEN_REQUEST, customer_id=identity.user_id)
            if request is None:
                opened = self._open(connection)
                request = opened.request
            room_id = request.room_id
        room = self.store.rooms.room_in(connection, room_id)
        if room is None:
            raise FrameError(ErrorCode.NOT_FOUND, f"room {room_id} does not exist")
        if identity.user_id not in room.member_ids:
            raise FrameError(ErrorCode.FORBIDDEN, f"you are not a member of room {room_id}")
        speaker = Speaker(identity.role.value)
        stored = self.store.insert_message_in(
            connection, room.room_id, identity.user_id, speaker, self.content, self.client_msg_id
        )
        if room.room_type is not RoomType.SUPPORT or identity.role is not Role.CUSTOMER:
            return CustomerMessage(room, stored, opened=opened)
        if request is None or request.room_id != room.room_id:
            request = _request(connection, ROOM_REQUEST, room_id=room.room_id)
        if request is None or request.status is not SupportStatus.BOT:
            return CustomerMessage(room, stored, opened=opened)
        history, context = self._dialogue(connection, room.room_id, request, stored)
        return CustomerMessage(room, stored, request, history, context, opened)

    def _open(self, connection: sa.Connection) -> Opened:
        """A new conversation with the bot and its `support_request_created` event."""
        customer = self.identity.user_id
        self.store.support.insert_request(connection, self.identity)
        request = _request(connection, OPEN_REQUEST, customer_id=customer)
        assert request is not None  # inserted just now in this transaction
        audience, event = user_audience(customer), _created(request)
        return Opened(request, self.store.events.append(connection, audience, CREATED, event))

    def _dialogue(
        self,
        connection: sa.Connection,
        room_id: str,
        request: SupportCase,
        stored: StoredMessage,
    ) -> tuple[list[Turn], dict[str, Any]]:
        """The bot policy's earlier turns and the model's context: from memory when exact."""
        memory = self.store.dialogues
        held = memory.before(room_id, request.request_id, stored.turn)
        if held is None:
            found = history_in(connection, stored.message_id)
            if found is None:
                return [], {}
            dialogue, _ = found
            turns = customer_turns(connection, room_id, request.created_at)
            held = RoomDialogue(request.request_id, stored.turn, dialogue, turns)
            memory.remember(room_id, held)
        return list(held.turns), as_mapping(held.history.context_for(stored.context))

    def alone(self) -> CustomerMessage:
        """The job in its own transaction; a resend is found (as `ChatStore.insert_message`)."""
        try:
            with self.store.events.begin() as connection:
                return self(connection)
        except sa.exc.IntegrityError:
            found = self.store.find_sent(self.identity.user_id, self.client_msg_id)
            if found is None:
                raise
            # Where the first copy went (with no room_id: the customer's support room).
            info = self.store.message_info(found.message_id)
            room = self.store.rooms.room(info.room_id) if info else None
            if room is None:
                raise FrameError(ErrorCode.NOT_FOUND, "the room of that message is gone") from None
            return CustomerMessage(room, found)


@dataclass(frozen=True)
class BotReplyJob:
    """The prediction of a customer message and, while the bot owns the room, its reply."""

    store: ChatStore
    request_id: str
    room_id: str
    message_id: str
    prediction: Classification
    polarity: float
    subjectivity: float
    content: str | None = None  # None: record the prediction only (a hand-off follows)
    reply: BotReply | None = None
    text: str = ""  # the customer's words, and their message's turn (the dialogue memory)
    turn: int = -1

    def __call__(self, connection: sa.Connection) -> StoredMessage | None:
        """Run inside the group's transaction; None when no reply was written."""
        prediction = self.prediction
        record = PredictionRecord(
            message_id=self.message_id,
            intent=prediction.intent,
            confidence=prediction.confidence,
            fallback=prediction.fallback,
            model_name=prediction.model_name,
            model_version=prediction.model_version,
            polarity=self.polarity,
            subjectivity=self.subjectivity,
            ts=now(),
            channel="chat",
        )
        INSERT_PREDICTION.execute(connection, prediction_row(record))
        memory = self.store.dialogues
        if self.content is None:
            memory.forget(self.room_id)
            return None
        found = REQUEST_STATUS.first(connection, {"request_id": self.request_id})
        status = found[0] if found else None
        if status != SupportStatus.BOT.value:
            memory.forget(self.room_id)
            return None  # a person took the conversation while the model was thinking
        stored = self.store.insert_message_in(
            connection, self.room_id, BOT_USER_ID, Speaker.BOT, self.content, None, self.reply
        )
        memory.answered(
            self.room_id, self.turn, self.text, prediction, self.polarity, self.content, stored.turn
        )
        return stored


def _request(connection: sa.Connection, query: DriverRow, **params: str) -> SupportCase | None:
    row = query.first(connection, params)
    return SupportCase.from_row(dict(zip(query.names, row, strict=True))) if row else None


def _created(request: SupportCase) -> dict[str, str]:
    return {"request_id": request.request_id, "room_id": request.room_id}

"""What an agent works with beside a conversation, and the rule that keeps labels clean.

`agent_desk` (agents only) answers with the model's known intents (the true-intent picker),
the canned replies of `data/responses.yaml`, the hand-off of the request being handled, the
customer's earlier conversations and the newest message of the conversation the customer has
read (from their stored receipts, so the console shows it after a reload too). `label_message`
goes through `check_label`: a true intent is one the serving model knows, or a new intent marked
as such with a valid name, so a typo in the console can never become a training label.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Collection
from dataclasses import dataclass
from typing import Any

import sqlalchemy as sa

from conversations import tables
from conversations.intent_queue import NEW_INTENT_NAME
from serving.chat import protocol as p
from serving.chat.bot import DEFAULT, ResponseCatalogue
from serving.chat.context import ChatContext, Client
from serving.chat.event_log import user_audience
from serving.chat.protocol import ErrorCode, FrameError
from serving.chat.support import SupportCase

logger = logging.getLogger("serving.chat")
# The intents the serving model can predict, read when asked (the champion may be swapped).
KnownIntents = Callable[[], Collection[str]]
EARLIER_CONVERSATIONS = 5
MESSAGES_PER_CONVERSATION = 3
EXCERPT_CHARS = 280
# Receipts read back per request: the newest of the room's agents' receipt events.
RECEIPTS_SCANNED = 200


def catalogue_intents(catalogue: ResponseCatalogue) -> KnownIntents:
    """The catalogue's intents: the known intents when the model is remote (CHAT_INTENT_URL)."""
    intents = frozenset(key for key in catalogue.replies if not key.startswith("_"))
    return lambda: intents - {DEFAULT}


@dataclass(frozen=True)
class AgentDesk:
    """The catalogue and the model's intents, as the agent console uses them."""

    catalogue: ResponseCatalogue
    known_intents: KnownIntents

    def intents(self) -> list[str]:
        """The known intents, sorted."""
        return sorted(self.known_intents())

    def check_label(self, intent: str, new_intent: bool) -> None:
        """Refuse (400) a label that is neither a known intent nor a valid, marked new one."""
        known = set(self.known_intents())
        if new_intent:
            if intent in known:
                raise FrameError(
                    ErrorCode.BAD_FRAME, f"{intent!r} is already an intent: label it as known"
                )
            if not NEW_INTENT_NAME.match(intent):
                raise FrameError(
                    ErrorCode.BAD_FRAME,
                    "a new intent's name is lower-case letters, digits and _ (at most 64, "
                    f"starting with a letter), like card_arrival; got {intent[:80]!r}",
                )
        elif intent not in known:
            raise FrameError(
                ErrorCode.BAD_FRAME,
                f"{intent[:80]!r} is not one of the model's intents: choose a known one, "
                "or mark it as a new intent (new_intent: true)",
            )

    def canned_replies(self) -> dict[str, list[str]]:
        """Replies an agent may send as they are: the catalogue without the bot's own turns."""
        return {k: v for k, v in sorted(self.catalogue.replies.items()) if not k.startswith("_")}


def customer_history(engine: sa.Engine, request: SupportCase) -> list[dict[str, Any]]:
    """The customer's earlier conversations, newest first, each with its first messages."""
    requests, messages = tables.support_requests, tables.messages
    earlier = (
        sa.select(requests)
        .where(
            requests.c.customer_id == request.customer_id,
            requests.c.request_id != request.request_id,
        )
        .order_by(requests.c.created_at.desc())
        .limit(EARLIER_CONVERSATIONS)
    )
    history = []
    with engine.connect() as connection:
        for row in connection.execute(earlier).mappings().all():
            case = SupportCase.from_row(row)
            said = connection.scalars(
                sa.select(messages.c.text)
                .where(messages.c.conversation_id == case.room_id, messages.c.speaker == "customer")
                .order_by(messages.c.turn)
                .limit(MESSAGES_PER_CONVERSATION)
            ).all()
            history.append(
                {
                    **{key: value for key, value in case.to_wire().items() if key != "room_id"},
                    "customer_messages": [text[:EXCERPT_CHARS] for text in said],
                }
            )
    return history


def customer_read(
    engine: sa.Engine, request: SupportCase, member_ids: Collection[str]
) -> str | None:
    """The newest message of the request's room the customer has receipted, or None.

    A receipt is stored as a `read_receipt` event to the message's sender (an agent of the room).
    """
    events = tables.events
    senders = [user_audience(m) for m in member_ids if m != request.customer_id]
    if not senders:
        return None
    query = (
        sa.select(events.c.payload)
        .where(events.c.audience.in_(senders), events.c.event_type == "read_receipt")
        .order_by(events.c.seq.desc())
        .limit(RECEIPTS_SCANNED)
    )
    with engine.connect() as connection:
        for payload in connection.scalars(query):
            receipt = json.loads(payload)
            if (receipt.get("room_id"), receipt.get("reader_id")) == (
                request.room_id,
                request.customer_id,
            ):
                return str(receipt["message_id"])
    return None


async def send_agent_desk(
    ctx: ChatContext, client: Client, desk: AgentDesk, data: p.AgentDeskQuery
) -> None:
    """Answer `agent_desk`: intents and canned replies, and a request's hand-off and history."""
    document: dict[str, Any] = {
        "known_intents": desk.intents(),
        "canned_replies": desk.canned_replies(),
        "request": None,
        "history": [],
        "customer_read": None,
    }
    if data.request_id is not None:
        request = await ctx.db(ctx.store.support.get, data.request_id)
        if request is None:
            raise FrameError(ErrorCode.NOT_FOUND, f"support request {data.request_id} not found")
        document["request"] = request.to_wire()
        document["history"] = await ctx.db(customer_history, ctx.store.engine, request)
        members = await ctx.events.room_members(request.room_id)
        document["customer_read"] = await ctx.db(customer_read, ctx.store.engine, request, members)
    client.send(p.encode("agent_desk", document))

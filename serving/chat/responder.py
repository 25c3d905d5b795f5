"""The bot's turn in a support conversation: classify, store the prediction, reply or hand off."""

from __future__ import annotations

import asyncio
import dataclasses
import logging
from collections.abc import Sequence
from dataclasses import dataclass

from conversations.schema import Speaker
from features.sentiment import sentiment
from serving.chat.auth import BOT_USER_ID
from serving.chat.bot import (
    HANDOFF,
    HANDOFF_FAILED,
    REPHRASE,
    RESOLVED,
    Action,
    BotPolicy,
    Decision,
    HandoffReason,
    ResponseCatalogue,
    Signals,
    decide,
)
from serving.chat.classification import Classification, Classify
from serving.chat.context import ChatContext
from serving.chat.event_log import AGENTS_AUDIENCE
from serving.chat.store import BotReply
from serving.chat.support import SupportCase
from serving.chat.turns import BotReplyJob, CustomerMessage

logger = logging.getLogger("serving.chat.bot")


@dataclass(frozen=True)
class BotKit:
    """The bot's own parts: replies, hand-off thresholds, the model and how long to wait."""

    catalogue: ResponseCatalogue
    policy: BotPolicy
    classify: Classify
    classify_timeout_s: float


class BotResponder:
    """Answers customer messages in support rooms while the bot owns the conversation."""

    def __init__(self, context: ChatContext, kit: BotKit) -> None:
        self.context = context
        self.kit = kit

    async def answer(self, sent: CustomerMessage, text: str) -> None:
        """The bot's turn for a message stored with what it needs (`CustomerMessageJob`)."""
        kit, room, request = self.kit, sent.room, sent.request
        assert request is not None  # only messages of a conversation the bot owns come here
        message_id, history, context = sent.stored.message_id, sent.history, sent.context
        try:
            document = await asyncio.wait_for(
                kit.classify(text, context), timeout=kit.classify_timeout_s
            )
            prediction = Classification.from_document(document)
        except Exception as exc:
            # The customer was already acknowledged; a person takes over instead of the model.
            logger.warning("intent model failed (%r); handing %s to a human", exc, room.room_id)
            await self.hand_off(request, HandoffReason.MODEL_UNAVAILABLE, HANDOFF_FAILED)
            return
        polarity, subjectivity = _sentiment(prediction, text)
        decision = decide(
            kit.policy,
            Signals(text, prediction.intent, prediction.fallback, polarity),
            history,
        )
        job = BotReplyJob(
            self.context.store,
            request.request_id,
            room.room_id,
            message_id,
            prediction,
            polarity,
            subjectivity,
            text=text,
            turn=sent.stored.turn,
        )
        if decision.action is Action.HANDOFF:
            assert decision.reason is not None
            await self.context.db.group(job)  # the prediction; the hand-off writes the rest
            await self.hand_off(request, decision.reason, HANDOFF, prediction, decision)
            return
        key = REPHRASE if decision.action is Action.REPHRASE else prediction.intent
        reply = BotReply(decision.action.value, prediction, decision.frustration, message_id)
        # The prediction, the reply and its event: one transaction (one group commit).
        job = dataclasses.replace(job, content=kit.catalogue.reply(key), reply=reply)
        stored = await self.context.db.group(job)
        if stored is not None and stored.event is not None:
            await self.context.events.publish_message("bot_reply", stored.event, room.member_ids)

    async def say(
        self,
        room_id: str,
        content: str,
        reply: BotReply,
        members: Sequence[str] | None = None,
    ) -> None:
        """Post a bot message to a room (with the prediction it answers, when there is one)."""
        ctx = self.context
        stored = await ctx.db(
            ctx.store.insert_message, room_id, BOT_USER_ID, Speaker.BOT, content, None, reply
        )
        assert stored.event is not None  # the bot sends no client_msg_id: never a resend
        await ctx.events.publish_message("bot_reply", stored.event, members)

    async def hand_off(
        self,
        request: SupportCase,
        reason: HandoffReason,
        reply_key: str,
        prediction: Classification | None = None,
        decision: Decision | None = None,
    ) -> None:
        """Give a bot conversation to the agents: say so in the room and tell every agent."""
        ctx = self.context
        if not await ctx.db(ctx.store.support.hand_off, request.request_id, reason.value):
            return  # a human has it already
        reply = BotReply(
            Action.HANDOFF.value,
            prediction,
            decision.frustration if decision else None,
            handoff_reason=reason.value,
        )
        await self.say(request.room_id, self.kit.catalogue.reply(reply_key), reply)
        await self.notify_agents(request, reason.value)

    async def customer_asked(self, request: SupportCase, description: str) -> None:
        """A `support_request` frame: the customer wants a person now."""
        request = dataclasses.replace(request, description=description)
        await self.hand_off(request, HandoffReason.CUSTOMER_REQUEST, HANDOFF)

    async def resolved(self, room_id: str) -> None:
        """Tell the customer the conversation is resolved (and ask for a rating)."""
        await self.say(room_id, self.kit.catalogue.reply(RESOLVED), BotReply("resolved"))

    async def notify_agents(self, request: SupportCase, reason: str) -> None:
        """Tell every agent a conversation waits for a human (`new_support_request`)."""
        await self.context.events.emit(
            AGENTS_AUDIENCE,
            "new_support_request",
            {
                "request_id": request.request_id,
                "customer_id": request.customer_id,
                "room_id": request.room_id,
                "reason": reason,
                "issue_type": request.issue_type,
                "description": request.description,
            },
            roles=("agent",),
        )


def _sentiment(prediction: Classification, text: str) -> tuple[float, float]:
    # The in-process prediction carries TextBlob sentiment already; a remote one may not.
    if prediction.polarity is not None and prediction.subjectivity is not None:
        return prediction.polarity, prediction.subjectivity
    polarity, subjectivity = sentiment([text])[0]
    return float(polarity), float(subjectivity)

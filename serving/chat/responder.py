"""The bot's turn in a support conversation: classify, store the prediction, reply or hand off."""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime
from typing import TYPE_CHECKING, Any

from features.sentiment import sentiment
from serving.chat.auth import BOT_USER_ID
from serving.chat.bot import (
    HANDOFF,
    HANDOFF_FAILED,
    REPHRASE,
    Action,
    Decision,
    HandoffReason,
    Signals,
    decide,
)
from serving.chat.store import AGENTS_AUDIENCE

if TYPE_CHECKING:
    from serving.chat.hub import ChatHub

logger = logging.getLogger("serving.chat.bot")


class BotResponder:
    """Answers customer messages in support rooms while the bot owns the conversation."""

    def __init__(self, hub: ChatHub) -> None:
        self.hub = hub

    async def respond(self, message_id: str, text: str, room: dict[str, Any]) -> None:
        """The bot's reply to one stored customer message (silent once a human has it)."""
        hub, room_id = self.hub, room["room_id"]
        request = await hub.db(hub.store.support.latest_for_room, room_id)
        if request is None or request["status"] != "bot":
            return
        since = datetime.fromisoformat(request["created_at"])
        history = await hub.db(hub.store.customer_turns, room_id, since)
        try:
            prediction = await asyncio.wait_for(
                hub.classify(text, {"session": {"message_count": len(history)}}),
                timeout=hub.settings.classify_timeout_s,
            )
        except Exception as exc:
            # The customer was already acknowledged; a person takes over instead of the model.
            logger.warning("intent model failed (%r); handing %s to a human", exc, room_id)
            await self._hand_off(request, HandoffReason.MODEL_UNAVAILABLE, HANDOFF_FAILED, None)
            return
        polarity, subjectivity = _sentiment(prediction, text)
        await hub.db(hub.store.record_prediction, message_id, prediction, polarity, subjectivity)
        decision = decide(
            hub.policy,
            Signals(text, prediction["intent"], bool(prediction["fallback"]), polarity),
            history,
        )
        if decision.action is Action.HANDOFF:
            assert decision.reason is not None
            await self._hand_off(request, decision.reason, HANDOFF, prediction, decision)
            return
        key = REPHRASE if decision.action is Action.REPHRASE else prediction["intent"]
        await self.say(
            room_id,
            hub.catalogue.reply(key),
            prediction=prediction,
            decision=decision,
            reply_to=message_id,
            members=room["member_ids"],
        )

    async def say(
        self,
        room_id: str,
        content: str,
        *,
        prediction: dict[str, Any] | None = None,
        decision: Decision | None = None,
        reply_to: str | None = None,
        action: str = "notice",
        handoff_reason: str | None = None,
        members: list[str] | None = None,
    ) -> None:
        """Post a bot message to a room (with the prediction it answers, when there is one)."""
        hub = self.hub
        extra: dict[str, Any] = {
            "intent": prediction["intent"] if prediction else None,
            "confidence": prediction["confidence"] if prediction else None,
            "fallback": bool(prediction["fallback"]) if prediction else None,
            "model_version": str(prediction["model"]["version"]) if prediction else None,
            "action": decision.action.value if decision else action,
            "frustration": decision.frustration if decision else None,
            "reply_to": reply_to,
        }
        if handoff_reason:
            extra["handoff_reason"] = handoff_reason
        stored = await hub.db(
            hub.store.insert_message, room_id, BOT_USER_ID, "bot", content, None, extra
        )
        await hub.publish_stored("bot_reply", stored.data, members)

    async def _hand_off(
        self,
        request: dict[str, Any],
        reason: HandoffReason,
        reply_key: str,
        prediction: dict[str, Any] | None,
        decision: Decision | None = None,
    ) -> None:
        hub = self.hub
        changed = await hub.db(hub.store.support.hand_off, request["request_id"], reason.value)
        if not changed:
            return
        await self.say(
            request["room_id"],
            hub.catalogue.reply(reply_key),
            prediction=prediction,
            decision=decision,
            action=Action.HANDOFF.value,
            handoff_reason=reason.value,
        )
        await notify_agents(hub, request, reason.value)


async def notify_agents(hub: ChatHub, request: dict[str, Any], reason: str) -> None:
    """Tell every agent a conversation waits for a human (`new_support_request`)."""
    await hub.emit(
        AGENTS_AUDIENCE,
        "new_support_request",
        {
            "request_id": request["request_id"],
            "customer_id": request["customer_id"],
            "room_id": request["room_id"],
            "reason": reason,
            "issue_type": request.get("issue_type"),
            "description": request.get("description"),
        },
        roles=("agent",),
    )


def _sentiment(prediction: dict[str, Any], text: str) -> tuple[float, float]:
    # The in-process prediction carries TextBlob sentiment already; a remote one may not.
    scores = prediction.get("sentiment")
    if scores:
        return float(scores["polarity"]), float(scores["subjectivity"])
    polarity, subjectivity = sentiment([text])[0]
    return float(polarity), float(subjectivity)

"""Labels, the agent desk and what customers' sockets carry, over the real WebSocket.

A true intent is one the served model knows or a new one marked as such (a typo is an `error`
frame and no row); customers never receive the model's view of their turns, on any path
(live, `resume`, `room_history`); `agent_desk` gives agents intents, canned replies and history.
"""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from conversations import tables
from serving.chat.client import ChatClient
from serving.chat.redaction import INTERNAL_FIELDS
from tests.serving.chat.conftest import run, token, unique_user

pytestmark = pytest.mark.slow


def labels_of(serving_registry: dict, message_id: str) -> list[tuple[str, bool]]:
    engine = sa.create_engine(f"sqlite:///{serving_registry['root'] / 'store.db'}")
    query = sa.select(tables.labels.c.intent, tables.labels.c.is_new_intent).where(
        tables.labels.c.message_id == message_id
    )
    with engine.connect() as connection:
        found = [(row.intent, bool(row.is_new_intent)) for row in connection.execute(query)]
    engine.dispose()
    return found


async def _labels(service) -> tuple[str, list[str]]:
    async with (
        ChatClient.connect(service.ws_url, token(unique_user("labelled"))) as customer,
        ChatClient.connect(service.ws_url, token(unique_user("labeller"), "agent")) as agent,
    ):
        await customer.say("how do I activate my new card?")
        message_id = (await customer.expect("ack"))["message_id"]
        await agent.send("agent_desk")
        known = (await agent.expect("agent_desk"))["known_intents"]
        assert known and known == sorted(known)
        typo = known[0][:-1] + "x" + known[0][-1]
        refused = [
            {"intent": typo},  # the typo that used to become a training label
            {"intent": "Card Arrival!", "new_intent": True},  # not a valid new name
            {"intent": known[0], "new_intent": True},  # known: not new
        ]
        for frame in refused:
            await agent.send("label_message", message_id=message_id, **frame)
            error = await agent.expect("error")
            assert error["code"] == 400, error
        assert "not one of the model's intents" in agent.of_type("error")[0]["message"]
        await agent.send("heartbeat")
        await agent.expect("pong")  # the connection lives
        await agent.send("label_message", message_id=message_id, intent=known[0])
        assert (await agent.expect("label_recorded"))["new_intent"] is False
        await agent.send(
            "label_message", message_id=message_id, intent="crypto_refund", new_intent=True
        )
        assert (await agent.expect("label_recorded"))["new_intent"] is True
        await customer.send("agent_desk")
        assert (await customer.expect("error"))["code"] == 403
    return message_id, known


def test_a_typo_cannot_become_a_label(service, serving_registry):
    message_id, known = run(_labels(service))
    assert labels_of(serving_registry, message_id) == [(known[0], False), ("crypto_refund", True)]


def internals(frames: list[dict]) -> set[str]:
    """Internal fields found anywhere in the frames (messages and room histories)."""
    found: set[str] = set()
    for frame in frames:
        data = frame["data"]
        for message in [data, *data.get("messages", [])] if isinstance(data, dict) else []:
            found |= INTERNAL_FIELDS & set(message)
    return found


async def _customer_frames(service) -> None:
    customer_id = unique_user("private")
    async with (
        ChatClient.connect(service.ws_url, token(customer_id)) as customer,
        ChatClient.connect(service.ws_url, token(unique_user("triage"), "agent")) as agent,
    ):
        await customer.say("my new card does not work, how do I activate it")
        room_id = (await customer.expect("bot_reply"))["room_id"]
        await customer.send("support_request", description="please, a person")
        handoff = await customer.expect("bot_reply", where=lambda d: d["action"] == "handoff")
        await customer.send("join_room", room_id=room_id)  # its own room: history too
        await customer.expect("room_history")
        await customer.send("resume", last_seq=0)
        await customer.expect("resume_complete")
        assert len(customer.of_type("bot_reply")) >= 4  # live and replayed
        assert internals(customer.seen) == set(), "a customer frame carries model internals"
        assert "confidence" not in json.dumps(customer.seen)
        assert handoff["content"]

        # Agents still see all of it.
        await agent.send("join_room", room_id=room_id)
        history = (await agent.expect("room_history"))["messages"]
        answered = next(m for m in history if m["role"] == "bot" and m.get("intent"))
        assert {"intent", "confidence", "fallback", "model_version", "top_k"} <= set(answered)
        assert answered["top_k"][0]["intent"] == answered["intent"] or answered["fallback"]
        assert any(m.get("handoff_reason") == "customer_request" for m in history)

        # Live: the bot's closing message reaches both; only the agent's frame has the fields.
        request_id = customer.of_type("support_request_created")[0]["request_id"]
        await agent.send("support_resolve", request_id=request_id, resolution="done")
        closing = await agent.expect("bot_reply", where=lambda d: d["action"] == "resolved")
        assert {"intent", "model_version", "frustration"} <= set(closing)
        await customer.expect("bot_reply", where=lambda d: d["action"] == "resolved")
        assert internals(customer.seen) == set()


def test_customer_frames_carry_no_model_internals(service):
    run(_customer_frames(service))


async def _desk(service) -> None:
    customer_id, agent_id = unique_user("returning"), unique_user("desk")
    async with (
        ChatClient.connect(service.ws_url, token(customer_id)) as customer,
        ChatClient.connect(service.ws_url, token(agent_id, "agent")) as agent,
    ):
        await customer.say("my top up did not go through")
        await customer.expect("bot_reply")
        await customer.send("support_request", description="first time")
        first = await agent.expect(
            "new_support_request", where=lambda d: d["customer_id"] == customer_id
        )
        await agent.send("support_resolve", request_id=first["request_id"], resolution="fixed it")
        await customer.expect("support_request_resolved")
        await customer.say("it happened again today")
        await customer.send("support_request", description="second time")
        second = await agent.expect(
            "new_support_request",
            where=lambda d: (
                d["customer_id"] == customer_id and d["request_id"] != first["request_id"]
            ),
        )
        await agent.send("agent_desk", request_id=second["request_id"])
        desk = await agent.expect("agent_desk")
        assert desk["request"]["request_id"] == second["request_id"]
        assert desk["request"]["handoff_reason"] == "customer_request"
        (earlier,) = desk["history"]
        assert earlier["request_id"] == first["request_id"]
        assert earlier["resolution"] == "fixed it"
        assert earlier["customer_messages"] == ["my top up did not go through"]
        replies = desk["canned_replies"]
        assert replies["card_arrival"] and not any(key.startswith("_") for key in replies)
        await agent.send("agent_desk", request_id="no-such-request")
        assert (await agent.expect("error"))["code"] == 404


def test_the_agent_desk_gives_intents_canned_replies_and_history(service):
    run(_desk(service))

"""The chat tier end to end: real WebSocket clients against a real `bentoml serve`."""

from __future__ import annotations

import asyncio

import dagster as dg
import pandas as pd
import pytest
import sqlalchemy as sa
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from conversations import tables
from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings
from serving.chat.auth import issue_token
from serving.chat.client import ChatClient
from tests.serving.chat.conftest import run, token, unique_user

pytestmark = pytest.mark.slow
FORGED = issue_token("a-different-secret-a-different-secret", "mallory", "agent", 60)


@pytest.fixture(scope="module")
def store_url(service, serving_registry):
    return f"sqlite:///{serving_registry['root'] / 'store.db'}"


def rows(store_url: str, table: sa.Table, **where: str) -> list[dict]:
    engine = sa.create_engine(store_url)
    query = sa.select(table).where(*(table.c[key] == value for key, value in where.items()))
    with engine.connect() as connection:
        found = [dict(row) for row in connection.execute(query).mappings()]
    engine.dispose()
    return found


async def _support_conversation(service, customer_id: str, agent_id: str) -> dict:
    async with (
        ChatClient.connect(service.ws_url, token(customer_id)) as customer,
        ChatClient.connect(service.ws_url, token(agent_id, "agent")) as agent,
    ):
        await customer.say("I ordered a card two weeks ago and it still has not arrived")
        created = await customer.expect("support_request_created")
        ack = await customer.expect("ack")
        reply = await customer.expect("bot_reply")
        assert reply["room_id"] == created["room_id"] and reply["sender_id"] == "bot"
        assert reply["reply_to"] == ack["message_id"]
        # The model's view is for agents (serving/chat/redaction.py), the reply for the customer.
        assert not {"intent", "confidence", "fallback", "model_version"} & set(reply)
        assert reply["action"] in {"answer", "rephrase"} and reply["content"]

        await customer.say("this is not helping, I want to talk to a human")
        handoff = await customer.expect("bot_reply", where=lambda d: d["action"] == "handoff")
        assert "handoff_reason" not in handoff
        request = await agent.expect(
            "new_support_request", where=lambda d: d["customer_id"] == customer_id
        )
        assert request["room_id"] == created["room_id"] and request["reason"] == "asked_for_human"

        await agent.send("join_room", room_id=request["room_id"])
        history = await agent.expect("room_history")
        assert [m["role"] for m in history["messages"]] == ["customer", "bot", "customer", "bot"]
        answered, handed_off = history["messages"][1], history["messages"][3]
        assert answered["model_version"] == "1" and {"intent", "confidence"} <= set(answered)
        assert handed_off["handoff_reason"] == "asked_for_human"
        await customer.expect("member_joined", where=lambda d: d["user_id"] == agent_id)

        await agent.say("Hello, I can see your order. Let me check.", room_id=request["room_id"])
        answer = await customer.expect("new_message", where=lambda d: d["sender_id"] == agent_id)
        assert answer["role"] == "agent"

        # The bot is silent while a human has the conversation: frames on one connection are
        # handled in order, so a bot reply would arrive before the pong.
        await customer.say("ok thanks, I'll wait")
        await customer.expect("ack")
        await customer.send("heartbeat")
        await customer.expect("pong")
        assert len(customer.of_type("bot_reply")) == 2

        first_message = ack["message_id"]
        # card_arrival is not one of the six intents of the test model: a new intent to it.
        await agent.send(
            "label_message", message_id=first_message, intent="card_arrival", new_intent=True
        )
        assert (await agent.expect("label_recorded"))["intent"] == "card_arrival"

        await customer.send("support_resolve", request_id=request["request_id"], resolution="x")
        denied = await customer.expect("error")
        assert denied["code"] == 403

        await agent.send(
            "support_resolve", request_id=request["request_id"], resolution="card re-sent"
        )
        resolved = await customer.expect("support_request_resolved")
        assert resolved["resolution"] == "card re-sent"
        await customer.send("rate_support", request_id=request["request_id"], rating=5)
        assert (await customer.expect("support_rated"))["rating"] == 5
        return {"request": request, "first_message": first_message}


def test_support_conversation_bot_hand_off_and_resolution_are_stored(service, store_url):
    customer_id, agent_id = unique_user("carol"), unique_user("agent")
    outcome = run(_support_conversation(service, customer_id, agent_id))
    room_id = outcome["request"]["room_id"]

    messages = rows(store_url, tables.messages, conversation_id=room_id)
    speakers = [m["speaker"] for m in sorted(messages, key=lambda m: m["turn"])]
    assert speakers == ["customer", "bot", "customer", "bot", "agent", "customer", "bot"]
    assert all(m["channel"] == "chat" for m in messages)
    customer_ids = [m["message_id"] for m in messages if m["speaker"] == "customer"]
    predictions = [
        p for i in customer_ids for p in rows(store_url, tables.predictions, message_id=i)
    ]
    assert len(predictions) == 2  # the third customer message went to the agent, not the model
    assert all(p["model_version"] == "1" and p["polarity"] is not None for p in predictions)
    labels = rows(store_url, tables.labels, message_id=outcome["first_message"])
    assert [(label["intent"], label["label_source"]) for label in labels] == [
        ("card_arrival", "agent")
    ]
    (request,) = rows(store_url, tables.support_requests, room_id=room_id)
    assert request["status"] == "resolved" and request["rating"] == 5
    assert request["handoff_reason"] == "asked_for_human" and request["agent_id"] == agent_id


def test_the_pipeline_ingests_the_chat_store(service, store_url, tmp_path):
    customer_id = unique_user("dave")
    outcome = run(_support_conversation(service, customer_id, unique_user("agent")))
    empty_csv_dir = tmp_path / "banking77"
    empty_csv_dir.mkdir()
    settings = PipelineSettings(
        banking77_dir=None,
        labelled_csv_paths=[],
        conversation_jsonl_dir=tmp_path / "incoming",
        conversation_store_url=store_url,
        lake_dir=tmp_path / "lake",
        mlflow_tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}",
    )
    (tmp_path / "incoming").mkdir()
    defs = build_definitions(settings)
    job = defs.resolve_implicit_global_asset_job_def()
    selection = [
        dg.AssetKey("conversation_log"),  # the chat store's days (all changed: no range given)
        dg.AssetKey("raw_conversations"),
        dg.AssetKey("conversations"),
        dg.AssetKey("quarantined_messages"),
    ]
    (tmp_path / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(tmp_path / "home")) as instance:
        result = job.execute_in_process(instance=instance, asset_selection=selection)
    assert result.success
    kept = pd.read_parquet(settings.lake_dir / "conversations.parquet")
    room = kept[kept["conversation_id"] == outcome["request"]["room_id"]]
    assert len(room) == 7
    labelled = room[room["message_id"] == outcome["first_message"]].iloc[0]
    assert labelled["intent"] == "card_arrival" and labelled["label_source"] == "agent"


async def _rooms_made_by_an_agent(service) -> None:
    host, alice, bob = unique_user("host"), unique_user("alice"), unique_user("bob")
    eve = unique_user("eve")
    async with (
        ChatClient.connect(service.ws_url, token(host, "agent")) as h,
        ChatClient.connect(service.ws_url, token(alice)) as a,
        ChatClient.connect(service.ws_url, token(bob)) as b,
        ChatClient.connect(service.ws_url, token(eve)) as e,
    ):
        # Only agents put other people in a room (serving/chat/README.md).
        await h.send("create_room", name="book club", type="private", member_ids=[alice, bob])
        room = await a.expect("room_created")
        assert (await b.expect("room_created"))["room_id"] == room["room_id"]
        room_id = room["room_id"]

        await b.send("typing", room_id=room_id, is_typing=True)
        typing = await a.expect("typing")
        assert typing == {"room_id": room_id, "user_id": bob, "is_typing": True}

        await b.send("presence_update", status="away")  # to everyone sharing a room with bob
        away = await a.expect("presence_update", where=lambda d: d["user_id"] == bob)
        assert away["status"] == "away"

        await a.say("hello bob", room_id=room_id)
        message = await b.expect("new_message")
        assert message["sender_id"] == alice and message["content"] == "hello bob"
        await b.send("read_receipt", message_id=message["message_id"])
        receipt = await a.expect("read_receipt")
        assert receipt["reader_id"] == bob and receipt["message_id"] == message["message_id"]

        await e.send("join_room", room_id=room_id)
        assert (await e.expect("error"))["code"] == 403  # private rooms are invite-only
        await e.say("let me in", room_id=room_id)
        assert (await e.expect("error"))["code"] == 403

        await h.send("leave_room", room_id=room_id)
        left = await a.expect("member_left")
        assert left["creator_id"] == alice and left["room_deleted"] is False
        await a.send("leave_room", room_id=room_id)
        moved = await b.expect("member_left", where=lambda d: d["user_id"] == alice)
        assert moved["creator_id"] == bob
        await b.send("leave_room", room_id=room_id)
        gone = await b.expect("member_left", where=lambda d: d["user_id"] == bob)
        assert gone["room_deleted"] is True
        await b.send("join_room", room_id=room_id)
        assert (await b.expect("error"))["code"] == 404

        await h.send("create_room", name="dm", type="direct", member_ids=[eve])
        direct = await e.expect("room_created")
        await e.send("leave_room", room_id=direct["room_id"])
        refused = await e.expect("error")
        assert refused["code"] == 403 and "direct" in refused["message"]


def test_rooms_typing_receipts_and_room_rules(service):
    run(_rooms_made_by_an_agent(service))


@pytest.mark.parametrize(
    ("make_url", "reason"),
    [
        (lambda url: url, "required"),
        (lambda url: f"{url}?token=not-a-jwt", "invalid token"),
        (lambda url: f"{url}?token={token('late', ttl_s=-10)}", "expired"),
        (lambda url: f"{url}?token={FORGED}", "invalid token"),
    ],
)
def test_bad_tokens_close_the_socket_with_1008(service, make_url, reason):
    async def attempt() -> ConnectionClosed:
        async with connect(make_url(service.ws_url)) as socket:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
            return closed.value

    closed = run(attempt())
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    assert reason in closed.rcvd.reason


async def _bad_frames(service) -> None:
    async with ChatClient.connect(service.ws_url, token(unique_user("fuzz"))) as client:
        cases = [
            ("{not json", 400),
            ('{"type": "launch_rockets", "data": {}}', 400),
            ('{"type": "chat_message", "data": {"content": "no id"}}', 400),
            ('{"type": "chat_message", "data": {"content": "   ", "client_msg_id": "b1"}}', 400),
            ('{"type": "join_room", "data": {"room_id": "no-such-room"}}', 404),
            ('{"type": "label_message", "data": {"message_id": "m", "intent": "x"}}', 403),
            ('{"type": "heartbeat", "data": {"pad": "' + "x" * 20_000 + '"}}', 413),
        ]
        for raw, code in cases:
            await client.socket.send(raw)
            error = await client.expect("error")
            assert error["code"] == code, (raw[:60], error)
            assert error["message"]
        await client.socket.send(b"\xff\xfe binary garbage")
        assert (await client.expect("error"))["code"] == 400
        await client.say("still here?")
        assert (await client.expect("ack"))["message_id"]


def test_bad_frames_get_errors_and_the_connection_lives(service):
    run(_bad_frames(service))


async def _flood(service) -> None:
    async with ChatClient.connect(service.ws_url, token(unique_user("flood"))) as client:
        for _ in range(40):
            await client.send("presence_update", status="busy")
        errors = []
        async with asyncio.timeout(10):
            while not errors:
                frame = await client.receive()
                if frame["type"] == "error":
                    errors.append(frame["data"])
        assert errors[0]["code"] == 429 and "retry" in errors[0]["message"]
        await client.send("heartbeat")
        await client.expect("pong")


def test_flooding_gets_429_and_the_connection_stays_open(service):
    run(_flood(service))


async def _duplicate(service, store_url: str) -> None:
    user = unique_user("dup")
    async with ChatClient.connect(service.ws_url, token(user)) as client:
        await client.say("my card payment was declined", client_msg_id="same-id")
        first = await client.expect("ack")
        await client.expect("bot_reply")
        await client.say("my card payment was declined", client_msg_id="same-id")
        second = await client.expect("ack")
        assert second["message_id"] == first["message_id"] and second["duplicate"] is True
        assert first["duplicate"] is False
        await client.send("heartbeat")
        await client.expect("pong")
        assert len(client.of_type("new_message")) == 1
        assert len(client.of_type("bot_reply")) == 1
    assert len(rows(store_url, tables.chat_messages, sender_id=user)) == 1


def test_a_resent_client_msg_id_is_stored_once(service, store_url):
    run(_duplicate(service, store_url))


async def _resume(service) -> None:
    alice, bob = unique_user("alice"), unique_user("bob")
    async with ChatClient.connect(service.ws_url, token(alice)) as a:
        async with ChatClient.connect(service.ws_url, token(bob)) as b:
            await a.send("create_room", name="resume", type="public")  # customers add no one
            room = await a.expect("room_created")
            await b.send("join_room", room_id=room["room_id"])
            await b.expect("room_history")
            last_seq = b.last_seq
        sent = [f"missed message {n}" for n in range(3)]
        for text in sent:
            await a.say(text, room_id=room["room_id"])
            await a.expect("ack")
        async with ChatClient.connect(service.ws_url, token(bob)) as b:
            await b.send("resume", last_seq=last_seq)
            done = await b.expect("resume_complete")
            replayed = [m["content"] for m in b.of_type("new_message")]
            assert replayed == sent
            seqs = [m["seq"] for m in b.of_type("new_message")]
            assert seqs == sorted(seqs) and done["last_seq"] == seqs[-1]


def test_resume_replays_missed_events_in_order(service):
    run(_resume(service))

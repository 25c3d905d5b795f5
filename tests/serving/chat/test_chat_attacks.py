"""The chat protocol as an attacker uses it: every move is an error event or a refusal, the
connection lives, and nothing of another user's reaches the attacker. Real `bentoml serve`
(CHAT_RATE_PER_S=5, CHAT_RATE_BURST=10), real WebSocket clients.
"""

from __future__ import annotations

import asyncio
import contextlib
import json

import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from serving.chat.client import ChatClient
from serving.chat.settings import ChatSettings
from tests.serving.chat.conftest import run, token, unique_user

pytestmark = pytest.mark.slow
MAX_SOCKETS = ChatSettings.model_fields["max_sockets_per_user"].default
BURST = 10  # CHAT_RATE_BURST of the session service
# Attack frames go out slower than CHAT_RATE_PER_S=5: each must meet its own refusal, not a 429.
PACE_S = 0.25


async def _sockets_share_one_rate_limit(service) -> None:
    user = unique_user("swarm")
    async with contextlib.AsyncExitStack() as stack:
        clients = [
            await stack.enter_async_context(ChatClient.connect(service.ws_url, token(user)))
            for _ in range(3)
        ]
        for client in clients:  # one socket's whole burst on each socket
            for _ in range(BURST):
                await client.send("presence_update", status="busy")
        for client in clients:
            await client.send("heartbeat")
            await client.expect("pong")
        limited = [e for c in clients for e in c.of_type("error") if e["code"] == 429]
        assert limited, "three sockets got three bursts: the limit is per socket, not per user"


def test_a_users_sockets_share_one_rate_limit(service):
    run(_sockets_share_one_rate_limit(service))


async def _socket_cap(service) -> None:
    user = unique_user("hoarder")
    async with contextlib.AsyncExitStack() as stack:
        for _ in range(MAX_SOCKETS):
            await stack.enter_async_context(ChatClient.connect(service.ws_url, token(user)))
        async with connect(f"{service.ws_url}?token={token(user)}") as socket:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 4429
        assert "too many connections" in closed.value.rcvd.reason
        async with ChatClient.connect(service.ws_url, token(unique_user("other"))) as other:
            assert other.of_type("welcome")  # the cap is per user
    for attempt in range(20):  # the server forgets the closed sockets as it reads their close
        try:
            async with ChatClient.connect(service.ws_url, token(user)) as again:
                assert again.of_type("welcome")
                return
        except ConnectionClosed:
            await asyncio.sleep(0.25 * (attempt + 1))
    raise AssertionError("the user's slots were not freed when their sockets closed")


def test_sockets_per_user_are_capped_with_4429(service):
    run(_socket_cap(service))


async def _resume_flood(service) -> None:
    async with ChatClient.connect(service.ws_url, token(unique_user("replayer"))) as client:
        for _ in range(15):
            await client.send("resume", last_seq=0)
        await client.send("heartbeat")
        await client.expect("pong")
        limited = [e for e in client.of_type("error") if e["code"] == 429]
        assert limited and "resume" in limited[0]["message"]
        assert len(client.of_type("resume_complete")) == 15 - len(limited)


def test_resume_is_rate_limited(service):
    run(_resume_flood(service))


async def _support_room_cannot_be_left(service) -> None:
    async with ChatClient.connect(service.ws_url, token(unique_user("leaver"))) as client:
        await client.say("hello, my card is blocked")
        created = await client.expect("support_request_created")
        await client.expect("ack")
        await client.send("leave_room", room_id=created["room_id"])
        refused = await client.expect("error")
        assert refused["code"] == 403 and "resolved" in refused["message"]
        await client.say("still my conversation?")
        assert (await client.expect("ack"))["room_id"] == created["room_id"]


def test_a_customer_cannot_leave_and_lose_their_support_room(service):
    run(_support_room_cannot_be_left(service))


def attacks(alice: str, bob: str, room_id: str, support: dict, secret: dict) -> list:
    """(frame type, data, expected error code) of a customer who belongs to none of it."""
    support_room = support["room_id"]
    return [
        ("join_room", {"room_id": room_id}, 403),
        ("join_room", {"room_id": support_room}, 403),
        ("chat_message", {"room_id": room_id, "content": "hi", "client_msg_id": "a1"}, 403),
        ("chat_message", {"room_id": support_room, "content": "x", "client_msg_id": "a2"}, 403),
        ("typing", {"room_id": room_id, "is_typing": True}, 403),
        ("read_receipt", {"message_id": secret["message_id"]}, 403),
        ("leave_room", {"room_id": room_id}, 409),
        ("support_escalate", {"request_id": support["request_id"], "reason": "x"}, 403),
        ("rate_support", {"request_id": support["request_id"], "rating": 1}, 403),
        ("support_resolve", {"request_id": support["request_id"], "resolution": "x"}, 403),
        ("label_message", {"message_id": secret["message_id"], "intent": "spam"}, 403),
        ("join_room", {"room_id": "r" * 129}, 400),
        ("chat_message", {"content": "x", "client_msg_id": "i" * 129}, 400),
        ("resume", {"last_seq": -1}, 400),
        ("resume", {"last_seq": 2**63}, 400),  # past SQLite's integers: was a 500
        ("resume", {"last_seq": 1e29}, 400),
        ("create_room", {"name": "trap", "type": "private", "member_ids": [alice]}, 403),
        ("create_room", {"name": "dm", "type": "direct", "member_ids": [alice]}, 403),
        ("create_room", {"name": "lobby", "type": "public", "member_ids": [alice, bob]}, 403),
    ]


async def _stranger(service) -> None:
    host, alice, bob = unique_user("host"), unique_user("alice"), unique_user("bob")
    mallory = unique_user("mallory")
    async with (
        ChatClient.connect(service.ws_url, token(host, "agent")) as h,
        ChatClient.connect(service.ws_url, token(alice)) as a,
        ChatClient.connect(service.ws_url, token(bob)) as b,
        ChatClient.connect(service.ws_url, token(mallory)) as m,
    ):
        await h.send("create_room", name="secret", type="private", member_ids=[alice, bob])
        room_id = (await a.expect("room_created"))["room_id"]
        await a.say("alice's secret", room_id=room_id)
        secret = await b.expect("new_message")
        await a.say("my card was stolen")
        support = await a.expect("support_request_created")

        for frame_type, data, code in attacks(alice, bob, room_id, support, secret):
            # json, not the client's orjson: it writes integers past 64 bits as they are.
            await m.socket.send(json.dumps({"type": frame_type, "data": data}))
            error = await m.expect("error")
            assert error["code"] == code, (frame_type, data, error)
            await asyncio.sleep(PACE_S)
        await m.send("create_room", name="my own", type="public", member_ids=[])
        assert (await m.expect("room_created"))["member_ids"] == [mallory]

        await m.send("resume", last_seq=0)
        await m.expect("resume_complete")
        await m.send("heartbeat")
        await m.expect("pong")  # the connection lived through all of it
        private = (room_id, support["room_id"], "alice's secret", "my card was stolen")
        leaked = [
            frame
            for frame in m.seen
            if frame["type"] != "error" and any(text in json.dumps(frame) for text in private)
        ]
        assert leaked == []
        await a.send("heartbeat")
        await a.expect("pong")
        assert len(a.of_type("room_created")) == 1  # mallory's rooms never reached alice
        assert not [f for f in a.seen if json.dumps(f).count(mallory)]


def test_a_stranger_gets_errors_and_none_of_another_users_data(service):
    run(_stranger(service))

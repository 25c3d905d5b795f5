"""`welcome` tells a user where their own events stand, not how busy the platform is.

Against the session's real `bentoml serve` (tests/serving/conftest.py `service`).
"""

from __future__ import annotations

import pytest

from serving.chat.client import ChatClient
from tests.serving.chat.conftest import run, token, unique_user
from tests.serving.conftest import ServiceProcess

pytestmark = pytest.mark.slow


async def _welcome(service: ServiceProcess, user_id: str) -> int:
    """The `last_seq` a fresh connection of the user is welcomed with."""
    async with ChatClient.connect(service.ws_url, token(user_id)) as client:
        return int(client.of_type("welcome")[0]["last_seq"])


async def _settle(client: ChatClient) -> None:
    # Frames of one socket are handled in order: after the pong, the earlier frames are done.
    await client.send("heartbeat")
    await client.expect("pong")


async def _welcome_ignores_others_and_resume_replays(service: ServiceProcess) -> None:
    carol, dave = unique_user("carol"), unique_user("dave")
    async with ChatClient.connect(service.ws_url, token(carol)) as client:
        await client.say("my card has not arrived yet")
        await client.expect("bot_reply")
        await client.send("create_room", name="carol's room", type="public")
        room_id = (await client.expect("room_created"))["room_id"]
        await _settle(client)
        seen = client.last_seq
    before = await _welcome(service, carol)

    async with ChatClient.connect(service.ws_url, token(dave)) as other:
        # Traffic of another customer, in rooms of his own: nothing carol may see.
        await other.say("my card payment was declined")
        await other.expect("bot_reply")
        await other.send("create_room", name="dave's room", type="public")
        await other.expect("room_created")
        await _settle(other)
        after_others = await _welcome(service, carol)
        # Then dave writes in carol's room while she is away.
        await other.send("join_room", room_id=room_id)
        await other.expect("room_history")
        missed = ["hello carol", "are you there?"]
        acks = []
        for text in missed:
            await other.say(text, room_id=room_id)
            acks.append(await other.expect("ack"))

    assert before == seen > 0
    assert after_others == before
    async with ChatClient.connect(service.ws_url, token(carol)) as client:
        assert client.of_type("welcome")[0]["last_seq"] == acks[-1]["seq"]
        await client.send("resume", last_seq=seen)
        done = await client.expect("resume_complete")
        replayed = client.of_type("new_message")
    assert [message["content"] for message in replayed] == missed
    assert [message["seq"] for message in replayed] == [ack["seq"] for ack in acks]
    assert done["last_seq"] == acks[-1]["seq"]


def test_welcome_does_not_move_with_other_users_traffic_and_resume_replays_what_was_missed(
    service: ServiceProcess,
) -> None:
    run(_welcome_ignores_others_and_resume_replays(service))

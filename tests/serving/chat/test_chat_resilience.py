"""Failure and scale paths of the chat tier: SIGKILL, a dead model, silent clients, Redis fan-out.

Three services against a real `redis-server`: two Redis-connected replicas sharing one store, the
second of which the SIGKILL test kills and restarts, and one whose model cannot be reached. They
start at once: a start is mostly single-threaded, so one after the other left a core idle.
"""

from __future__ import annotations

import asyncio

import pytest
import sqlalchemy as sa
from websockets.exceptions import ConnectionClosed

from conversations import tables
from serving.chat.client import ChatClient
from serving.process_tree import port_listeners, running
from tests.serving.chat.conftest import run, token, unique_user
from tests.serving.conftest import ServiceProcess, free_port, service_env
from tests.serving.fleet import running_together

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def services(serving_registry, redis_url):
    replica = {"CHAT_BROKER_URL": redis_url}
    processes = {
        "a": ServiceProcess(service_env(serving_registry, "replicas.db", **replica)),
        # Also the server the SIGKILL test kills and restarts: its log names every request, so
        # the restarted server's own log shows it served.
        "b": ServiceProcess(
            service_env(serving_registry, "replicas.db", SERVING_ACCESS_LOG="true", **replica)
        ),
        "fault": ServiceProcess(
            service_env(
                serving_registry,
                "fault.db",
                CHAT_INTENT_URL=f"http://127.0.0.1:{free_port()}",  # nothing listens there
                CHAT_HEARTBEAT_INTERVAL_S="0.5",
                CHAT_HEARTBEAT_TIMEOUT_S="2",
            )
        ),
    }
    with running_together(processes.values()):  # every server is stopped, even if one fails
        yield processes


async def _fan_out(a: ServiceProcess, b: ServiceProcess) -> None:
    alice, bob, agent_id = unique_user("alice"), unique_user("bob"), unique_user("agent")
    async with (
        ChatClient.connect(a.ws_url, token(alice)) as on_a,
        ChatClient.connect(b.ws_url, token(bob)) as on_b,
        ChatClient.connect(b.ws_url, token(agent_id, "agent")) as agent_on_b,
    ):
        await on_a.send("create_room", name="across", type="public")  # customers add no one
        room = await on_a.expect("room_created")
        await on_b.send("join_room", room_id=room["room_id"])
        await on_b.expect("room_history")
        await on_a.say("hello from replica a", room_id=room["room_id"])
        heard = await on_b.expect("new_message")
        assert heard["content"] == "hello from replica a" and heard["sender_id"] == alice
        await on_b.send("typing", room_id=room["room_id"], is_typing=True)
        assert (await on_a.expect("typing"))["user_id"] == bob
        await on_b.say("hello from replica b", room_id=room["room_id"])
        assert (await on_a.expect("new_message"))["content"] == "hello from replica b"

        await on_a.send("support_request", description="please call me back")
        request = await agent_on_b.expect(
            "new_support_request", where=lambda d: d["customer_id"] == alice
        )
        assert request["reason"] == "customer_request"
        await agent_on_b.send("join_room", room_id=request["room_id"])
        await agent_on_b.expect("room_history")
        await agent_on_b.say("Hi, an agent here", room_id=request["room_id"])
        assert (await on_a.expect("new_message", where=lambda d: d["role"] == "agent"))["content"]


def test_rooms_are_shared_across_replicas_through_redis(services):
    run(_fan_out(services["a"], services["b"]))


async def _model_down(service: ServiceProcess) -> None:
    customer, agent_id = unique_user("eve"), unique_user("agent")
    async with (
        ChatClient.connect(service.ws_url, token(customer)) as client,
        ChatClient.connect(service.ws_url, token(agent_id, "agent")) as agent,
    ):
        await client.say("where is my card?")
        ack = await client.expect("ack")
        assert ack["message_id"] and ack["seq"] > 0
        reply = await client.expect("bot_reply")
        assert reply["action"] == "handoff" and "intent" not in reply  # the reason: agents
        request = await agent.expect("new_support_request")
        assert request["customer_id"] == customer and request["reason"] == "model_unavailable"
        await client.send("heartbeat")
        await client.expect("pong")


def test_a_dead_model_hands_off_and_loses_nothing(services):
    run(_model_down(services["fault"]))


async def _silent_client(service: ServiceProcess) -> tuple[int, int]:
    async with (
        ChatClient.connect(service.ws_url, token(unique_user("quiet"))) as quiet,
        ChatClient.connect(service.ws_url, token(unique_user("chatty"))) as chatty,
    ):
        await quiet.expect("ping")  # the server pings; this client never answers

        async def keep_alive() -> None:
            # Reading each pong also reads the pings before it: frames left unread fill the
            # client's queue, which then stops reading, and its close waited 10 s for the reply.
            for _ in range(12):
                await chatty.send("heartbeat")
                await chatty.expect("pong")
                await asyncio.sleep(0.4)

        alive = asyncio.create_task(keep_alive())
        with pytest.raises(ConnectionClosed) as closed:
            async with asyncio.timeout(15):
                while True:
                    await quiet.receive(timeout=15)
        await alive
        await chatty.send("heartbeat")
        await chatty.expect("pong")
        return closed.value.rcvd.code, len(chatty.of_type("ping"))


def test_silent_connections_are_closed_and_live_ones_kept(services):
    code, pings = run(_silent_client(services["fault"]))
    assert code == 4408
    assert pings >= 1


async def _send_until_killed(service: ServiceProcess, customer: str) -> list[dict]:
    async with ChatClient.connect(service.ws_url, token(customer)) as client:
        for n in range(30):
            await client.say(f"message number {n} about my card", client_msg_id=f"k{n}")
        acks: list[dict] = []
        while len(acks) < 10:
            acks.append(await client.expect("ack"))
        service.stop(kill=True)  # SIGKILL with messages still in flight
        try:
            async with asyncio.timeout(5):
                while True:
                    frame = await client.receive()
                    if frame["type"] == "ack":
                        acks.append(frame["data"])
        except (ConnectionClosed, TimeoutError):
            pass
        return acks


async def _replay(service: ServiceProcess, customer: str) -> list[dict]:
    async with ChatClient.connect(service.ws_url, token(customer)) as client:
        await client.send("resume", last_seq=0)
        await client.expect("resume_complete")
        return client.of_type("new_message")


def test_sigkill_loses_no_acknowledged_message(services, serving_registry):
    # Replica b (a real server of its own, on the store it shares with a) is killed and restarted.
    service, customer = services["b"], unique_user("kate")
    crashed, old_log = service.started, service.log
    acks = run(_send_until_killed(service, customer))
    assert len(acks) >= 10
    # The whole tree died: no worker of the old server is left to answer on the port.
    assert not running(crashed) and not port_listeners(service.port)
    service.start()
    assert service.log != old_log and service.pids.isdisjoint(p.pid for p in crashed)
    replayed = run(_replay(service, customer))
    assert service.served("/chat/ws"), service.log.read_text()[-3000:]
    replayed_ids = [m["message_id"] for m in replayed]
    for ack in acks:
        assert ack["message_id"] in replayed_ids, ack
    assert [m["seq"] for m in replayed] == sorted(m["seq"] for m in replayed)
    engine = sa.create_engine(f"sqlite:///{serving_registry['root'] / 'replicas.db'}")
    with engine.connect() as connection:
        stored = set(
            connection.scalars(
                sa.select(tables.messages.c.message_id).where(tables.messages.c.user_id == customer)
            )
        )
    engine.dispose()
    assert {ack["message_id"] for ack in acks} <= stored

"""Welcome seqs and presence peers from the hub's memory: exact across workers and restarts.

Two hubs on one SQLite store with a real Redis broker stand for two workers (each with its own
event loop, as Starlette's test client runs each app); a hub stopped and another started on the
same store, for a restart. `hub.views.reads` counts the store reads a hub made for views.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient

from serving.chat.auth import Identity, Role
from serving.chat.broker import Envelope
from serving.chat.hub import ChatHub
from serving.chat.presence import UserView, UserViews, read_view
from serving.chat.presence_reads import BatchedReads, read_views
from serving.chat.settings import ChatSettings
from tests.serving.chat.conftest import run, token, unique_user
from tests.serving.conftest import CHAT_SECRET


async def never_called(text: str, context: dict | None) -> dict:
    raise AssertionError("no support room here: the bot is not asked")


@contextlib.contextmanager
def running_hub(
    store: Path | str, broker_url: str | None = None
) -> Iterator[tuple[ChatHub, TestClient]]:
    """A hub on `store` (a SQLite file or a URL: a worker), its app in a test client of its own."""
    url = f"sqlite:///{store}" if isinstance(store, Path) else store
    settings = ChatSettings(jwt_secret=CHAT_SECRET, store_url=url, broker_url=broker_url)
    hub = ChatHub(settings, never_called)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await hub.start()
        yield
        await hub.close()

    app = Starlette(routes=[WebSocketRoute("/ws", hub.serve)], lifespan=lifespan)
    with TestClient(app) as client:
        yield hub, client


def receive_until(socket: Any, frame_type: str, where=lambda data: True) -> dict:
    for _ in range(50):
        frame = socket.receive_json()
        if frame["type"] == frame_type and where(frame["data"]):
            return frame["data"]
    raise AssertionError(f"no {frame_type}")


def send(socket: Any, frame_type: str, **data: Any) -> None:
    socket.send_text(json.dumps({"type": frame_type, "data": data}))


def connect(client: TestClient, user_id: str) -> Any:
    return client_of(client, user_id, "customer")


def client_of(client: TestClient, user_id: str, role: str) -> Any:
    return client.websocket_connect(f"/ws?token={token(user_id, role)}")


def say(socket: Any, room_id: str, text: str) -> int:
    """Send a message to the room; its seq once acked."""
    send(socket, "chat_message", content=text, room_id=room_id, client_msg_id=text)
    return int(receive_until(socket, "ack")["seq"])


def welcomed(client: TestClient, user_id: str) -> int:
    with connect(client, user_id) as socket:
        return int(receive_until(socket, "welcome")["last_seq"])


def open_room(socket: Any) -> str:
    receive_until(socket, "welcome")
    send(socket, "create_room", name="ours", type="public")
    return str(receive_until(socket, "room_created")["room_id"])


def test_two_workers_keep_a_remembered_view_exact(
    sqlite_or_postgres_url: str, redis_url: str
) -> None:
    store = sqlite_or_postgres_url
    carol, dave = unique_user("carol"), unique_user("dave")
    with (
        running_hub(store, redis_url) as (hub_a, worker_a),
        running_hub(store, redis_url) as (_, worker_b),
        connect(worker_a, carol) as carol_a,
        connect(worker_b, dave) as dave_b,
    ):
        room_id = open_room(carol_a)
        receive_until(dave_b, "welcome")
        send(dave_b, "join_room", room_id=room_id)
        receive_until(dave_b, "room_history")
        receive_until(carol_a, "member_joined", lambda d: d["user_id"] == dave)
        first = say(dave_b, room_id, "one")
        receive_until(carol_a, "new_message")
        # Carol's view is read once (the join forgot the one of her connect)...
        remembered = welcomed(worker_a, carol)
        assert remembered == first
        reads = hub_a.views.reads
        # ...then dave writes on the other worker; worker A hears it through Redis.
        second = say(dave_b, room_id, "two")
        receive_until(carol_a, "new_message", lambda d: d["seq"] == second)
        assert welcomed(worker_a, carol) == second > first
        assert hub_a.views.reads == reads  # from memory, and exact
        # Dave left: carol's peers changed on worker B; worker A forgets and reads again.
        send(dave_b, "leave_room", room_id=room_id)
        left = receive_until(carol_a, "member_left")
        assert welcomed(worker_a, carol) == left["seq"]
        assert hub_a.views.reads == reads + 1


def test_presence_reaches_a_peer_who_joined_on_the_other_worker(
    tmp_path: Path, redis_url: str
) -> None:
    store = tmp_path / "store.db"
    carol, dave = unique_user("carol"), unique_user("dave")
    with (
        running_hub(store, redis_url) as (_, worker_a),
        running_hub(store, redis_url) as (_, worker_b),
    ):
        with connect(worker_a, carol) as carol_a:
            room_id = open_room(carol_a)
        # Carol's view (no peers) is remembered on A; dave joins her room on B.
        with connect(worker_b, dave) as dave_b:
            receive_until(dave_b, "welcome")
            send(dave_b, "join_room", room_id=room_id)
            receive_until(dave_b, "room_history")
            with connect(worker_a, carol) as carol_again:
                receive_until(carol_again, "welcome")
                online = receive_until(dave_b, "presence_update", lambda d: d["user_id"] == carol)
                assert online["status"] == "online"
                send(carol_again, "presence_update", status="away")
                away = receive_until(dave_b, "presence_update", lambda d: d["user_id"] == carol)
                assert away["status"] == "away"


def test_after_a_restart_welcome_and_resume_come_from_the_store(tmp_path: Path) -> None:
    store = tmp_path / "store.db"
    carol, dave = unique_user("carol"), unique_user("dave")
    with running_hub(store) as (_, worker):
        with connect(worker, carol) as carol_socket, connect(worker, dave) as dave_socket:
            room_id = open_room(carol_socket)
            receive_until(dave_socket, "welcome")
            send(dave_socket, "join_room", room_id=room_id)
            receive_until(dave_socket, "room_history")
            seen = say(carol_socket, room_id, "hello")
        assert welcomed(worker, carol) == seen
    # The worker restarts: nothing remembered. Dave writes while carol is away.
    with running_hub(store) as (hub, worker):
        with connect(worker, dave) as dave_socket:
            receive_until(dave_socket, "welcome")
            missed = [say(dave_socket, room_id, text) for text in ("are you", "there?")]
        reads = hub.views.reads
        with connect(worker, carol) as carol_socket:
            assert receive_until(carol_socket, "welcome")["last_seq"] == missed[-1]
            send(carol_socket, "resume", last_seq=seen)
            done = receive_until(carol_socket, "resume_complete")
        assert hub.views.reads == reads + 1
    assert done == {"replayed": 2, "last_seq": missed[-1], "more": False}


def view_of(seq: int) -> UserView:
    return UserView(seq, frozenset())


def frame(event_type: str, **data: Any) -> str:
    return json.dumps({"type": event_type, "data": data})


def test_a_read_an_envelope_overtook_is_not_kept_and_agents_are_not_kept() -> None:
    read_at: list[int] = []
    carol = Identity("carol", Role.CUSTOMER)

    async def scenario() -> None:
        async def read(identity: Identity) -> UserView:
            read_at.append(len(read_at))
            if identity.role is Role.CUSTOMER and len(read_at) == 1:
                # While the first read runs, an event for carol is delivered.
                views.heard(Envelope(frame("new_message", seq=9), ("carol",)))
            return view_of(5)

        views = UserViews(read)
        assert (await views.view(carol)).last_seq == 5  # the read's answer, not kept
        assert len(views) == 0
        await views.view(carol)
        assert len(views) == 1 and len(read_at) == 2
        views.heard(Envelope(frame("typing", room_id="r"), ("carol",)))  # not stored: no seq
        views.heard(Envelope(frame("bot_reply", seq=12), ("carol",)))
        assert (await views.view(carol)).last_seq == 12 and len(read_at) == 2
        await views.view(Identity("ann", Role.AGENT))
        await views.view(Identity("ann", Role.AGENT))
        assert len(read_at) == 4 and len(views) == 1

    run(scenario())


def test_views_expire_and_the_least_recent_is_forgotten_first() -> None:
    now = [0.0]

    async def read(identity: Identity) -> UserView:
        return view_of(1)

    async def scenario() -> None:
        views = UserViews(read, capacity=2, ttl_s=10.0, clock=lambda: now[0])
        for user in ("a", "b", "a", "c"):
            await views.view(Identity(user, Role.CUSTOMER))
        assert views.reads == 3 and len(views) == 2
        await views.view(Identity("a", Role.CUSTOMER))  # kept: b was the least recent
        assert views.reads == 3
        now[0] = 11.0
        await views.view(Identity("a", Role.CUSTOMER))
        assert views.reads == 4

    run(scenario())


def test_views_read_together_are_those_read_one_by_one(sqlite_or_postgres_url: str) -> None:
    store = sqlite_or_postgres_url
    carol, dave, erin, agent = (unique_user(name) for name in ("carol", "dave", "erin", "ann"))
    with running_hub(store) as (hub, worker):
        with (
            connect(worker, carol) as carol_socket,
            connect(worker, dave) as dave_socket,
            client_of(worker, agent, "agent") as agent_socket,
        ):
            room_id = open_room(carol_socket)
            send(carol_socket, "create_room", name="left behind", type="public")
            other_room = receive_until(carol_socket, "room_created")["room_id"]
            receive_until(dave_socket, "welcome")
            send(dave_socket, "join_room", room_id=room_id)
            receive_until(dave_socket, "room_history")
            say(dave_socket, room_id, "hi")
            send(dave_socket, "join_room", room_id=other_room)
            receive_until(dave_socket, "room_history")
            send(dave_socket, "leave_room", room_id=other_room)
            receive_until(dave_socket, "member_left")
            receive_until(agent_socket, "welcome")
            send(agent_socket, "join_room", room_id=room_id)
            receive_until(agent_socket, "room_history")
        identities = [
            Identity(carol, Role.CUSTOMER),
            Identity(dave, Role.CUSTOMER),
            Identity(agent, Role.AGENT),
            Identity(erin, Role.CUSTOMER),  # never seen: no room, no event
            Identity(carol, Role.CUSTOMER),
        ]
        one_by_one = [read_view(hub.store, identity) for identity in identities]
        assert read_views(hub.store, identities) == one_by_one
        assert one_by_one[0].peers == {carol, dave, agent} and one_by_one[3] == view_of(0)

        async def together() -> tuple[list[UserView], int]:
            async def read_many(batch: list[Identity]) -> list[UserView]:
                await asyncio.sleep(0.01)  # a read in flight while the others ask
                return read_views(hub.store, batch)

            reads = BatchedReads(read_many, most=30)
            views = await asyncio.gather(*(reads.read(i) for i in identities * 20))
            return list(views), reads.calls

        views, calls = run(together())
        assert views == one_by_one * 20 and calls == 4  # 100 asked at once, 30 a read

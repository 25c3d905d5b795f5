"""The hub in-process (Starlette's test client): a model that fails hands off to a human."""

from __future__ import annotations

import contextlib
import json
from pathlib import Path

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient

from conversations import tables
from serving.chat.hub import ChatHub
from serving.chat.settings import ChatSettings
from tests.serving.chat.conftest import token
from tests.serving.conftest import CHAT_SECRET


async def broken_model(text: str, context: dict | None) -> dict:
    raise RuntimeError("model weights are corrupt")


async def model_without_a_version(text: str, context: dict | None) -> dict:
    # A remote intent service of another release: no `model`, no `confidence`.
    return {"intent": "card_arrival", "fallback": False}


def hub_app(store: Path, model=broken_model) -> Starlette:
    settings = ChatSettings(jwt_secret=CHAT_SECRET, store_url=f"sqlite:///{store}")
    hub = ChatHub(settings, model)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await hub.start()
        yield
        await hub.close()

    return Starlette(routes=[WebSocketRoute("/ws", hub.serve)], lifespan=lifespan)


def receive_until(socket, frame_type: str) -> dict:
    for _ in range(20):
        frame = socket.receive_json()
        if frame["type"] == frame_type:
            return frame["data"]
    raise AssertionError(f"no {frame_type}")


def test_a_failing_model_hands_off_and_the_message_is_kept(tmp_path):
    store = tmp_path / "store.db"
    with (
        TestClient(hub_app(store)) as client,
        client.websocket_connect(f"/ws?token={token('zoe')}") as customer,
        client.websocket_connect(f"/ws?token={token('ann', 'agent')}") as agent,
    ):
        receive_until(customer, "welcome")
        customer.send_text(
            json.dumps({"type": "chat_message", "data": {"content": "hi", "client_msg_id": "1"}})
        )
        ack = receive_until(customer, "ack")
        reply = receive_until(customer, "bot_reply")
        assert reply["action"] == "handoff" and "handoff_reason" not in reply  # agents' only
        assert receive_until(agent, "new_support_request")["customer_id"] == "zoe"
        customer.send_text(json.dumps({"type": "heartbeat"}))
        assert receive_until(customer, "pong") == {}
    engine = sa.create_engine(f"sqlite:///{store}")
    with engine.connect() as connection:
        texts = list(connection.scalars(sa.select(tables.messages.c.message_id)))
        status, reason = connection.execute(
            sa.select(tables.support_requests.c.status, tables.support_requests.c.handoff_reason)
        ).one()
    assert ack["message_id"] in texts and status == "waiting_agent"
    assert reason == "model_unavailable"


def test_a_prediction_the_bot_cannot_read_hands_off_instead_of_failing(tmp_path):
    with (
        TestClient(hub_app(tmp_path / "store.db", model_without_a_version)) as client,
        client.websocket_connect(f"/ws?token={token('yan')}") as customer,
    ):
        receive_until(customer, "welcome")
        customer.send_text(
            json.dumps({"type": "chat_message", "data": {"content": "hi", "client_msg_id": "1"}})
        )
        customer.send_text(json.dumps({"type": "heartbeat"}))
        # Frames of one socket are handled in order: the bot's turn ends before the pong.
        frames = []
        while not frames or frames[-1]["type"] != "pong":
            frames.append(customer.receive_json())
    types = [frame["type"] for frame in frames]
    assert "error" not in types
    reply = next(frame["data"] for frame in frames if frame["type"] == "bot_reply")
    assert reply["action"] == "handoff"
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.connect() as connection:
        reason = connection.scalar(sa.select(tables.support_requests.c.handoff_reason))
    assert reason == "model_unavailable"

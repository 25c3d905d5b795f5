"""The hub in-process (Starlette's test client): a model that raises hands off to a human."""

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


def hub_app(store: Path) -> Starlette:
    settings = ChatSettings(jwt_secret=CHAT_SECRET, store_url=f"sqlite:///{store}")
    hub = ChatHub(settings, broken_model)

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
        assert reply["handoff_reason"] == "model_unavailable"
        assert receive_until(agent, "new_support_request")["customer_id"] == "zoe"
        customer.send_text(json.dumps({"type": "heartbeat"}))
        assert receive_until(customer, "pong") == {}
    engine = sa.create_engine(f"sqlite:///{store}")
    with engine.connect() as connection:
        texts = list(connection.scalars(sa.select(tables.messages.c.message_id)))
        status = connection.scalar(sa.select(tables.support_requests.c.status))
    assert ack["message_id"] in texts and status == "waiting_agent"

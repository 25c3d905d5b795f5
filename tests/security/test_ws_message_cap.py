"""A chat socket reads no message over MAX_MESSAGE_BYTES: real `bentoml serve`, real clients.

uvicorn reads WebSocket messages of up to 16 MiB by default: any customer could make the worker
buffer (and copy) 16 MiB a frame before the hub answered 413. A frame over CHAT_MAX_FRAME_BYTES
but within MAX_MESSAGE_BYTES still gets its `error` 413 and the socket lives.
"""

from __future__ import annotations

import asyncio
import json
from typing import Any

import pytest
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from serving.chat.protocol import MAX_MESSAGE_BYTES
from tests.serving.chat.conftest import run, token, unique_user
from tests.serving.conftest import ServiceProcess

pytestmark = pytest.mark.slow


def _frame(size: int) -> str:
    head = '{"type": "heartbeat", "data": {"pad": "'
    return head + "x" * (size - len(head) - 4) + '"}}'


async def _next(socket: ClientConnection, *types: str) -> dict[str, Any]:
    """The next frame of one of `types` (presence and the like may come first)."""
    while True:
        frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
        if frame["type"] in types:
            return frame


async def _oversized_message_closes(service: ServiceProcess) -> None:
    url = f"{service.ws_url}?token={token(unique_user('bloat'))}"
    async with connect(url, max_size=None) as socket:
        assert json.loads(await socket.recv())["type"] == "welcome"
        with pytest.raises(ConnectionClosed) as closed:
            await socket.send(_frame(2 * MAX_MESSAGE_BYTES))
            while True:  # an error frame here means the whole message was read
                frame = json.loads(await asyncio.wait_for(socket.recv(), 30))
                assert frame["type"] != "error", f"the server read the message: {frame}"
        assert closed.value.rcvd is not None and closed.value.rcvd.code == 1009


async def _large_frame_within_cap_is_an_error(service: ServiceProcess) -> None:
    url = f"{service.ws_url}?token={token(unique_user('large'))}"
    async with connect(url) as socket:
        assert json.loads(await socket.recv())["type"] == "welcome"
        await socket.send(_frame(MAX_MESSAGE_BYTES // 2))
        error = await _next(socket, "error", "pong")
        assert error["type"] == "error" and error["data"]["code"] == 413
        await socket.send('{"type": "heartbeat"}')
        assert (await _next(socket, "error", "pong"))["type"] == "pong"


def test_a_message_over_the_cap_closes_the_socket_unread(service: ServiceProcess) -> None:
    run(_oversized_message_closes(service))


def test_a_frame_within_the_cap_is_refused_and_the_socket_lives(service: ServiceProcess) -> None:
    run(_large_frame_within_cap_is_an_error(service))

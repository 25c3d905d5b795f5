"""A small asyncio client for the chat protocol (tests, bench/chat.py, scripted conversations).

async with ChatClient.connect("ws://127.0.0.1:3000/chat/ws", token) as client:
    await client.say("my card has not arrived", client_msg_id="m1")
    reply = await client.expect("bot_reply")
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import orjson
from websockets.asyncio.client import ClientConnection, connect

Frame = dict[str, Any]


class ChatClient:
    """One connection: send frames, wait for frames of a type, remember the highest seq seen."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.seen: list[Frame] = []
        self.last_seq = 0
        self._ids = itertools.count(1)

    @classmethod
    @asynccontextmanager
    async def connect(cls, url: str, token: str, **options: Any) -> AsyncIterator[ChatClient]:
        """Connect with a token and wait for `welcome`."""
        async with connect(f"{url}?token={token}", open_timeout=20, **options) as socket:
            client = cls(socket)
            await client.expect("welcome")
            yield client

    async def send(self, frame_type: str, **data: Any) -> None:
        """Send one frame."""
        await self.socket.send(orjson.dumps({"type": frame_type, "data": data}).decode())

    async def say(
        self, content: str, room_id: str | None = None, client_msg_id: str | None = None
    ) -> str:
        """Send a chat message; returns its client_msg_id."""
        client_msg_id = client_msg_id or f"c{next(self._ids)}-{id(self)}"
        data: dict[str, Any] = {"content": content, "client_msg_id": client_msg_id}
        if room_id is not None:
            data["room_id"] = room_id
        await self.send("chat_message", **data)
        return client_msg_id

    async def receive(self, timeout: float = 10.0) -> Frame:
        """The next frame."""
        frame = orjson.loads(await asyncio.wait_for(self.socket.recv(), timeout))
        self.seen.append(frame)
        seq = frame.get("data", {}).get("seq")
        if isinstance(seq, int) and frame["type"] != "ack":
            self.last_seq = max(self.last_seq, seq)
        return frame

    async def expect(
        self,
        frame_type: str,
        timeout: float = 10.0,
        where: Callable[[dict[str, Any]], bool] | None = None,
    ) -> dict[str, Any]:
        """The data of the next frame of a type (others are kept in `seen`); TimeoutError."""
        async with asyncio.timeout(timeout):
            while True:
                frame = await self.receive(timeout)
                if frame["type"] == frame_type and (where is None or where(frame["data"])):
                    return frame["data"]

    def of_type(self, frame_type: str) -> list[dict[str, Any]]:
        """Data of every frame of a type received so far."""
        return [frame["data"] for frame in self.seen if frame["type"] == frame_type]

"""The chat socket is served without permessage-deflate (serving/chat/connections.py).

The client below offers the extension, as browsers do; a server that accepts it keeps a zlib
compressor and decompressor per held socket (most of a connection's memory in bench/chat.py).
"""

from __future__ import annotations

from websockets.asyncio.client import connect

from serving.chat.client import ChatClient
from tests.serving.chat.conftest import run, token, unique_user


async def _handshake(service) -> None:
    url = f"{service.ws_url}?token={token(unique_user('deflate'))}"
    async with connect(url, compression="deflate") as socket:
        assert "permessage-deflate" in socket.request.headers.get("Sec-WebSocket-Extensions", "")
        assert socket.response.headers.get("Sec-WebSocket-Extensions") is None
        client = ChatClient(socket)
        await client.expect("welcome")
        await client.send("heartbeat")
        await client.expect("pong")


def test_the_server_refuses_permessage_deflate(service):
    run(_handshake(service))

"""A chat token stays out of URLs: real `bentoml serve`, real clients, the pages in Chromium.

The pages opened `ws://…/chat/ws?token=JWT`: reverse proxies write a request's URL, query and
all, to their access logs, so every customer's and agent's token ended up in them. A socket now
offers its token as the subprotocols `bearer, <JWT>` (handshake headers are not logged); the
server accepts `bearer`. `?token=` still works for other clients.
"""

from __future__ import annotations

import asyncio
import json

import pytest
from playwright.sync_api import Browser, WebSocket, expect
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed
from websockets.typing import Subprotocol

from tests.serving.chat.conftest import run, token, unique_user
from tests.serving.conftest import ServiceProcess

pytestmark = pytest.mark.slow
BEARER = Subprotocol("bearer")


async def _bearer_socket(service: ServiceProcess) -> None:
    user = unique_user("bearer")
    offered = [BEARER, Subprotocol(token(user))]
    async with connect(service.ws_url, subprotocols=offered) as socket:
        assert socket.subprotocol == "bearer"
        welcome = json.loads(await asyncio.wait_for(socket.recv(), 20))
        assert welcome["type"] == "welcome" and welcome["data"]["user_id"] == user
    forged = [BEARER, Subprotocol("not.a.token")]
    async with connect(service.ws_url, subprotocols=forged) as socket:
        assert socket.subprotocol == "bearer"  # accepted, so a browser sees the 1008
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 20)
    assert closed.value.rcvd is not None and closed.value.rcvd.code == 1008


def test_a_socket_authenticates_with_its_token_as_a_subprotocol(service: ServiceProcess) -> None:
    run(_bearer_socket(service))


@pytest.mark.parametrize(("page", "role"), [("/chat/", "customer"), ("/chat/agent", "agent")])
def test_the_pages_keep_the_token_out_of_the_socket_url(
    service: ServiceProcess, browser: Browser, page: str, role: str
) -> None:
    context = browser.new_context()
    tab = context.new_page()
    sockets: list[WebSocket] = []
    tab.on("websocket", lambda socket: sockets.append(socket))
    # The fragment: the page's own URL never reaches a server either.
    tab.goto(f"{service.url}{page}#token={token(unique_user('page'), role)}")
    expect(tab.locator("#status")).to_have_text("online", timeout=30_000)
    context.close()
    assert sockets, "the page opened no socket"
    assert all("token" not in socket.url for socket in sockets), [s.url for s in sockets]

"""Answers for requests no route serves: JSON errors, and a /chat redirect that names no host.

Starlette answers an unknown path (404) and a wrong method (405) with a plain-text body, while
every other error of the service is JSON `{"error": ...}`; a client parsing errors as JSON got a
decode error instead of the reason. Its slash redirect for `/chat` built an absolute URL from the
client's Host header, so a forged Host made the service redirect to any site.
"""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from serving.guards import send_json_error

ROUTE_STATUSES = frozenset({404, 405})
# Starlette's and FastAPI's own bodies for these (the chat app is FastAPI): nothing more to say.
_STOCK_BODIES = (b"Not Found", b"Method Not Allowed")
_STOCK_JSON = tuple(json.dumps({"detail": text.decode()}).encode() for text in _STOCK_BODIES)
CHAT_PREFIX = "/chat"


def _is_stock(body: bytes, content_type: bytes) -> bool:
    if content_type.startswith(b"application/json"):
        return body.replace(b" ", b"") in {b.replace(b" ", b"") for b in _STOCK_JSON}
    return True  # plain text or none: never the JSON the service documents


def _message(scope: Scope, status: int, allow: bytes | None) -> str:
    method, path = scope.get("method", "GET"), scope.get("path", "")
    if status == 404:
        return f"no route {path[:200]!r}"
    allowed = f" (allowed: {allow.decode()})" if allow else ""
    return f"method {method} is not allowed on {path[:200]!r}{allowed}"


class JsonRouteErrors:
    """Turn the framework's stock 404/405 answers into JSON `{"error": ...}`, keeping `Allow`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        held: Message | None = None
        body = b""

        async def rewrite(message: Message) -> None:
            nonlocal held, body
            if message["type"] == "http.response.start" and message["status"] in ROUTE_STATUSES:
                held = message
                return
            if held is None or message["type"] != "http.response.body":
                await send(message)
                return
            body += message.get("body", b"")
            if message.get("more_body", False):
                return
            await self._answer(scope, held, body, send)

        await self.app(scope, receive, rewrite)

    @staticmethod
    async def _answer(scope: Scope, start: Message, body: bytes, send: Send) -> None:
        headers = dict(start.get("headers") or [])
        if not _is_stock(body, headers.get(b"content-type", b"")):
            await send(start)
            await send({"type": "http.response.body", "body": body})
            return
        allow = headers.get(b"allow")
        extra = [(b"allow", allow)] if allow else []
        await send_json_error(send, start["status"], _message(scope, start["status"], allow), extra)


class RelativeChatRedirect:
    """`/chat` -> `/chat/` as a relative Location, never built from the client's Host header."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] == CHAT_PREFIX:
            query = scope.get("query_string", b"")
            location = f"{CHAT_PREFIX}/".encode() + (b"?" + query if query else b"")
            start = {
                "type": "http.response.start",
                "status": 307,
                "headers": [(b"location", location), (b"content-length", b"0")],
            }
            await send(start)
            await send({"type": "http.response.body", "body": b""})
            return
        await self.app(scope, receive, send)

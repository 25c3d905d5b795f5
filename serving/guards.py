"""Request guards in front of BentoML's handlers, which answer 500 to some malformed requests."""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send

JSON_ROUTES = frozenset({"/predict", "/batch_predict", "/feedback"})


async def send_json_error(
    send: Send, status: int, message: str, headers: list | None = None
) -> None:
    """Answer with a JSON error body."""
    body = json.dumps({"error": message}).encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
                *(headers or []),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


class JsonContentTypeGuard:
    """JSON endpoints accept only JSON bodies: anything else is a 415, never a server error.

    BentoML parses a `multipart/form-data` body without a boundary, for one, into a 500.
    A request without a Content-Type is read as JSON, as BentoML does.
    """

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["path"] in JSON_ROUTES and scope["method"] == "POST":
            content_type = dict(scope.get("headers") or []).get(b"content-type", b"")
            media_type = content_type.split(b";")[0].strip().lower()
            if media_type not in (b"", b"application/json"):
                await send_json_error(
                    send, 415, f"Content-Type must be application/json, not {media_type.decode()!r}"
                )
                return
        await self.app(scope, receive, send)


def _replay(body: bytes, receive: Receive) -> Receive:
    """A receive channel that yields `body` once, then whatever the client sends next."""
    sent = False

    async def replayed() -> Message:
        nonlocal sent
        if sent:
            return await receive()  # http.disconnect, in time
        sent = True
        return {"type": "http.request", "body": body, "more_body": False}

    return replayed


class _Refused(Exception):
    """A body refused while it was read: the status and message to answer with."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status, self.message = status, message


class BodyLimitGuard:
    """Request bodies over `max_bytes` are a 413, answered without reading past the limit.

    A Content-Length over the limit is refused at once, its body unread. A body is read here,
    counted as it arrives (a chunked one has no length to check first) and handed on whole;
    one byte over the limit and it is refused. BentoML reads a whole body before it validates
    it anyway. A body not complete within `timeout_s` is a 408: left to BentoML's own request
    timeout, a client that announced a body and never sent it got a 504, a server error.
    """

    def __init__(self, app: ASGIApp, max_bytes: int, timeout_s: float = 20.0) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.timeout_s = timeout_s

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers") or [])
        length = headers.get(b"content-length")
        if length is not None and not length.isdigit():
            await send_json_error(send, 400, "Content-Length must be a number of bytes")
            return
        if length is not None and int(length) > self.max_bytes:
            await self._refuse(
                send, 413, self._too_large(f"the request body of {int(length)} bytes")
            )
            return
        if (length is None or int(length) == 0) and b"transfer-encoding" not in headers:
            await self.app(scope, receive, send)  # no body
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await self._read(receive)
        except TimeoutError:
            message = f"the request body did not arrive within {self.timeout_s:g} s"
            await self._refuse(send, 408, f"{message} (SERVING_BODY_TIMEOUT_S)")
            return
        except _Refused as refused:
            await self._refuse(send, refused.status, refused.message)
            return
        if body is not None:
            await self.app(scope, _replay(body, receive), send)

    async def _read(self, receive: Receive) -> bytes | None:
        """The whole body, or None when the client went away."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return None
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_bytes:
                raise _Refused(413, self._too_large("the request body"))
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    def _too_large(self, what: str) -> str:
        return (
            f"{what} is larger than {self.max_bytes} bytes (SERVING_MAX_BODY_BYTES); "
            "send fewer items per request"
        )

    async def _refuse(self, send: Send, status: int, message: str) -> None:
        # The unread rest of the body makes the connection unusable for another request.
        await send_json_error(send, status, message, [(b"connection", b"close")])

"""Request guards in front of BentoML's handlers, which answer 500 to some malformed requests."""

from __future__ import annotations

import json

from starlette.types import ASGIApp, Receive, Scope, Send

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

"""The chat tier's ASGI app, mounted into the Bento at /chat: pages, the widget and static files.

The WebSocket route and the dev-token route are methods of the service (serving/service.py),
because they need the running hub.

Every page carries a Content-Security-Policy: scripts, styles and sockets from this origin only,
and who may frame it. The agent console may be framed by nobody (a framed console could be
clicked into labelling or resolving); the customer page by this origin; the widget's panel
(`/chat/embed`) also by the sites listed in CHAT_WIDGET_ORIGINS. `widget.js` is a plain script a
site includes from here, so it is served for any origin to load.

`POST /chat/widget/session` exchanges a widget site's short-lived site token for a chat token
(serving/chat/auth.py): the site's backend never holds CHAT_JWT_SECRET.

Errors answer `{"error": ...}` as every other route of the service does; a malformed body is a
400 with the problems in `detail` (field path and message, never the value), the shape of the
BentoML routes' answer, instead of FastAPI's 422 `{"detail": [...]}`.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from serving.chat.auth import AuthError, Role, issue_token, verify_site_token
from serving.chat.settings import ChatSettings

logger = logging.getLogger("serving.chat")

STATIC_DIR = Path(__file__).with_name("static")
# Sockets: 'self' covers ws:/wss: of this host in CSP Level 3 browsers.
_CSP = (
    "default-src 'self'; connect-src 'self'; img-src 'self' data:; object-src 'none'; "
    "base-uri 'none'; form-action 'self'; frame-ancestors {ancestors}"
)


class DevTokenRequest(BaseModel):
    """Who a local demo token is for."""

    user_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role = Role.CUSTOMER


class SiteToken(BaseModel):
    """A widget site's token for its signed-in customer, to exchange for a chat token."""

    model_config = ConfigDict(extra="forbid")
    token: str = Field(min_length=1, max_length=4096)


class WidgetSession(BaseModel):
    """The chat token a site token was exchanged for."""

    token: str
    user_id: str
    expires_at: int


@dataclass(frozen=True)
class WidgetSessions:
    """What the exchange needs: the sites' keys, the chat secret and the chat token's life."""

    site_keys: Mapping[str, str]
    secret: str
    ttl_s: int

    def exchange(self, site_token: str) -> WidgetSession:
        """A chat token for the customer a valid site token names; AuthError otherwise."""
        identity = verify_site_token(self.site_keys, site_token)
        token = issue_token(self.secret, identity.user_id, identity.role, self.ttl_s)
        expires_at = int(time.time()) + self.ttl_s
        return WidgetSession(token=token, user_id=identity.user_id, expires_at=expires_at)


def widget_sessions_of(settings: ChatSettings) -> WidgetSessions | None:
    """The token exchange of the configured widget sites; None without chat, secret or sites."""
    if not (settings.enabled and settings.jwt_secret and settings.widget_keys):
        return None
    return WidgetSessions(
        settings.site_keys(), settings.require_secret(), settings.widget_session_ttl_s
    )


async def bad_request(request: Request, refused: Exception) -> JSONResponse:
    """A body the route's model refuses: 400 `{"error", "detail"}`, without the values sent."""
    problems = refused.errors() if isinstance(refused, RequestValidationError) else []
    detail = [{key: problem[key] for key in ("type", "loc", "msg")} for problem in problems]
    fields = "; ".join(
        f"{'.'.join(str(part) for part in problem['loc'])}: {problem['msg']}"
        for problem in detail[:5]
    )
    return JSONResponse(
        {"error": f"invalid request body: {fields}", "detail": detail},
        status_code=400,
        headers={"cache-control": "no-store"},
    )


async def unreadable_body(request: Request, refused: Exception) -> JSONResponse:
    """FastAPI's own 400 for a body it cannot read (not UTF-8, say): `{"error"}` like the rest."""
    message = getattr(refused, "detail", None) or "the request body cannot be read"
    return JSONResponse({"error": str(message)}, status_code=400)


class DevLoginStatus(BaseModel):
    """Whether `POST /chat/dev/token` hands out tokens (the pages ask before offering the form)."""

    enabled: bool


def page_headers(ancestors: str) -> dict[str, str]:
    """Headers of an HTML page that only `ancestors` (a CSP source list) may frame."""
    return {
        "cache-control": "no-cache",
        "content-security-policy": _CSP.format(ancestors=ancestors),
        "x-content-type-options": "nosniff",
        "referrer-policy": "no-referrer",  # a ?token= must not leak through a Referer
    }


def build_chat_app(
    dev_login: bool = False,
    widget_origins: Sequence[str] = (),
    widget_sessions: WidgetSessions | None = None,
) -> FastAPI:
    """The /chat app: customer page, agent console, widget script, panel and token exchange."""
    app = FastAPI(title="support chat", docs_url=None, redoc_url=None, openapi_url=None)
    app.add_exception_handler(RequestValidationError, bad_request)
    app.add_exception_handler(400, unreadable_body)  # HTTPException(400), by status
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="chat-static")
    customer = page_headers("'self'")
    agent = page_headers("'none'") | {"x-frame-options": "DENY"}
    embed = page_headers(" ".join(["'self'", *widget_origins]))

    @app.get("/dev/login", include_in_schema=False)
    def dev_login_status() -> DevLoginStatus:
        return DevLoginStatus(enabled=dev_login)

    @app.get("/", include_in_schema=False)
    def customer_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "customer.html", headers=customer)

    @app.get("/embed", include_in_schema=False)
    def widget_panel() -> FileResponse:
        return FileResponse(STATIC_DIR / "customer.html", headers=embed)

    @app.get("/agent", include_in_schema=False)
    def agent_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "agent.html", headers=agent)

    @app.post("/widget/session", include_in_schema=False)
    def widget_session(body: SiteToken) -> JSONResponse:
        no_store = {"cache-control": "no-store"}  # a token: never cached anywhere
        if widget_sessions is None or not widget_sessions.site_keys:
            message = "no widget sites are configured (CHAT_WIDGET_KEYS)"
            return JSONResponse({"error": message}, status_code=404, headers=no_store)
        try:
            session = widget_sessions.exchange(body.token)
        except AuthError as refused:
            logger.info("widget session refused: %s", refused)
            return JSONResponse({"error": str(refused)}, status_code=401, headers=no_store)
        return JSONResponse(session.model_dump(), headers=no_store)

    @app.get("/widget.js", include_in_schema=False)
    def widget_script() -> FileResponse:
        return FileResponse(
            STATIC_DIR / "widget.js",
            media_type="text/javascript",
            headers={
                "cache-control": "no-cache",
                "access-control-allow-origin": "*",  # a public file; lets sites use SRI
                "cross-origin-resource-policy": "cross-origin",
                "x-content-type-options": "nosniff",
            },
        )

    return app

"""The chat tier's ASGI app, mounted into the Bento at /chat: pages, the widget and static files.

The WebSocket route and the dev-token route are methods of the service (serving/service.py),
because they need the running hub.

Every page carries a Content-Security-Policy: scripts, styles and sockets from this origin only,
and who may frame it. The agent console may be framed by nobody (a framed console could be
clicked into labelling or resolving); the customer page by this origin; the widget's panel
(`/chat/embed`) also by the sites listed in CHAT_WIDGET_ORIGINS. `widget.js` is a plain script a
site includes from here, so it is served for any origin to load.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from serving.chat.auth import Role

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


def build_chat_app(dev_login: bool = False, widget_origins: Sequence[str] = ()) -> FastAPI:
    """The /chat app: customer page, agent console, widget script and panel, assets."""
    app = FastAPI(title="support chat", docs_url=None, redoc_url=None, openapi_url=None)
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

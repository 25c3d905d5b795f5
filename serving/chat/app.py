"""The chat tier's ASGI app, mounted into the Bento at /chat: pages and static files.

The WebSocket route and the dev-token route are methods of the service (serving/service.py),
because they need the running hub.
"""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import FileResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, Field

from serving.chat.auth import Role

STATIC_DIR = Path(__file__).with_name("static")


class DevTokenRequest(BaseModel):
    """Who a local demo token is for."""

    user_id: str = Field(min_length=1, max_length=128, pattern=r"^[A-Za-z0-9_.@-]+$")
    role: Role = Role.CUSTOMER


class DevLoginStatus(BaseModel):
    """Whether `POST /chat/dev/token` hands out tokens (the pages ask before prompting)."""

    enabled: bool


def build_chat_app(dev_login: bool = False) -> FastAPI:
    """The /chat app: customer page at /chat/, agent console at /chat/agent, assets."""
    app = FastAPI(title="support chat", docs_url=None, redoc_url=None, openapi_url=None)
    app.mount("/static", StaticFiles(directory=STATIC_DIR, check_dir=False), name="chat-static")

    @app.get("/dev/login", include_in_schema=False)
    def dev_login_status() -> DevLoginStatus:
        return DevLoginStatus(enabled=dev_login)

    @app.get("/", include_in_schema=False)
    def customer_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "customer.html", headers={"cache-control": "no-cache"})

    @app.get("/agent", include_in_schema=False)
    def agent_page() -> FileResponse:
        return FileResponse(STATIC_DIR / "agent.html", headers={"cache-control": "no-cache"})

    return app

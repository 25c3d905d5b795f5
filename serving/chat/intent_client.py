"""Classifying over HTTP, for a chat tier deployed apart from the intent service.

The default is in-process (the hub calls the service's micro-batcher); set CHAT_INTENT_URL to
the base URL of an intent service to use this client instead.
"""

from __future__ import annotations

from typing import Any

import httpx


class RemoteIntentClient:
    """POSTs to `{base_url}/predict`; any failure raises, and the hub hands off to a human."""

    def __init__(self, base_url: str, timeout_s: float) -> None:
        self.client = httpx.AsyncClient(base_url=base_url.rstrip("/"), timeout=timeout_s)

    async def __call__(self, text: str, context: dict[str, Any] | None) -> dict[str, Any]:
        """The prediction document of one message."""
        response = await self.client.post("/predict", json={"text": text, "context": context})
        response.raise_for_status()
        return response.json()

    async def close(self) -> None:
        """Close the connection pool."""
        await self.client.aclose()

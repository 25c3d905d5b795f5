"""Small HTTP helpers of the service: JSON bodies and errors that say what is wrong."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import JSONResponse, Response


def json_response(document: Any, status: int = 200) -> Response:
    """Serialise directly: BentoML's own output path rebuilds a JSON schema per response."""
    return Response(orjson.dumps(document), status_code=status, media_type="application/json")


def error(status: int, message: str, **extra: Any) -> JSONResponse:
    """A JSON error body with a message that says what is wrong."""
    return JSONResponse({"error": message, **extra}, status_code=status)

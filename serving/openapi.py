"""/docs.json as the endpoints really answer: error responses, credentials, request bodies.

BentoML 1.4 builds the document (`_bentoml_sdk/service/openapi.py`, `generate_spec`) from the
`@bentoml.api` signatures and the mounted FastAPI apps, but it has no hook for what our guards,
credentials and checks answer: every API route gets the same 400/404/500 with a `detail` string
(BentoML's validation errors send a list), optional request parameters lose `null`, request
bodies are optional. This module completes the document in one place, and `OpenAPIDocument`
serves it at /docs.json in front of BentoML's own route.
"""

from __future__ import annotations

import copy
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import orjson
from starlette.types import ASGIApp, Receive, Scope, Send

from serving.guards import JSON_ROUTES, send_json_error
from serving.ratelimit import EXEMPT_PATHS

logger = logging.getLogger("serving")
ERROR_REF = {"$ref": "#/components/schemas/Error"}
ERROR_SCHEMA: dict[str, Any] = {
    "type": "object",
    "title": "Error",
    "required": ["error"],
    "properties": {
        "error": {"type": "string", "description": "what is wrong, in words"},
        "detail": {
            "type": "array",
            "items": {"type": "object"},
            "description": "validation errors: `loc` is the field's path, `msg` the problem",
        },
    },
}
SECURITY_SCHEMES: dict[str, Any] = {
    "ApiKey": {"type": "apiKey", "in": "header", "name": "X-API-Key"},
    "AgentToken": {
        "type": "http",
        "scheme": "bearer",
        "bearerFormat": "JWT",
        "description": "a chat token (serving/chat/auth.py) whose role is `agent`",
    },
}
ERRORS: dict[int, str] = {
    400: "Invalid JSON, or a field missing, of the wrong type or out of its bounds",
    401: "No valid credential",
    403: "The credential may not do this",
    404: "Not available (dev login is off)",
    408: "The body did not arrive within SERVING_BODY_TIMEOUT_S",
    413: "The body is larger than SERVING_MAX_BODY_BYTES",
    415: "The Content-Type is not application/json",
    429: "Rate limit exceeded (when SERVING_RATE_LIMIT_PER_S is set)",
    500: "Unexpected server error",
    503: "Overloaded, or the registry's version cannot be loaded",
}
HEADERS: dict[int, dict[str, Any]] = {
    401: {"WWW-Authenticate": {"schema": {"type": "string"}}},
    429: {"Retry-After": {"schema": {"type": "integer"}, "description": "seconds"}},
}
BODY_METHODS = frozenset({"post", "put", "patch"})


@dataclass(frozen=True)
class OperationPolicy:
    """What one operation answers beyond what every operation does, and who may call it."""

    errors: tuple[int, ...] = ()
    security: tuple[str, ...] = ()
    header_parameters_replaced: tuple[str, ...] = ()


API_ERRORS = (400, 500, 503)
POLICIES: dict[tuple[str, str], OperationPolicy] = {
    ("/predict", "post"): OperationPolicy(API_ERRORS),
    ("/batch_predict", "post"): OperationPolicy(API_ERRORS),
    ("/feedback", "post"): OperationPolicy((*API_ERRORS, 401, 403), ("ApiKey", "AgentToken")),
    ("/admin/reload", "post"): OperationPolicy((401, 503), ("ApiKey",), ("x-api-key",)),
    ("/chat/dev/token", "post"): OperationPolicy((404,)),
}


def _response(status: int) -> dict[str, Any]:
    response: dict[str, Any] = {
        "description": ERRORS[status],
        "content": {"application/json": {"schema": ERROR_REF}},
    }
    if status in HEADERS:
        response["headers"] = HEADERS[status]
    return response


def _statuses(path: str, method: str, policy: OperationPolicy) -> set[int]:
    statuses = set(policy.errors)
    if path not in EXEMPT_PATHS:
        statuses.add(429)
    if method in BODY_METHODS:
        statuses.update((408, 413))
    if path in JSON_ROUTES:
        statuses.add(415)
    return statuses


def _complete_operation(path: str, method: str, operation: dict[str, Any]) -> None:
    policy = POLICIES.get((path, method), OperationPolicy())
    # BentoML keys its own responses by int, FastAPI by str: JSON wants one of them.
    responses = {str(status): answer for status, answer in operation["responses"].items()}
    operation["responses"] = responses
    if "x-bentoml-name" in operation:  # an @bentoml.api route: BentoML's generic errors go
        for status in [status for status in responses if status != "200"]:
            del responses[status]
        schema_name = f"{operation['x-bentoml-name']}__Input"
        # The component keeps what the inline copy drops: `null` for optional parameters.
        operation["requestBody"]["content"]["application/json"]["schema"] = {
            "$ref": f"#/components/schemas/{schema_name}"
        }
        operation["requestBody"]["required"] = True
    for code in sorted(_statuses(path, method, policy)):
        responses[str(code)] = _response(code)
    if "requestBody" in operation and "x-bentoml-name" not in operation:
        # The chat app answers a malformed body 400 `{"error", "detail"}` (serving/chat/app.py).
        responses.pop("422", None)
        responses["400"] = _response(400)
    if policy.security:
        operation["security"] = [{scheme: []} for scheme in policy.security]
    if policy.header_parameters_replaced:  # declared by the security scheme instead
        replaced = set(policy.header_parameters_replaced)
        parameters = [
            p
            for p in operation.get("parameters", [])
            if not (p.get("in") == "header" and p.get("name", "").lower() in replaced)
        ]
        if parameters:
            operation["parameters"] = parameters
        else:
            operation.pop("parameters", None)


def complete_spec(spec: dict[str, Any]) -> dict[str, Any]:
    """A copy of BentoML's document with our errors, credentials and request bodies."""
    spec = copy.deepcopy(spec)
    components = spec.setdefault("components", {})
    schemas = components.setdefault("schemas", {})
    schemas["Error"] = ERROR_SCHEMA
    components["securitySchemes"] = SECURITY_SCHEMES
    for path, item in spec.get("paths", {}).items():
        for method, operation in item.items():
            if isinstance(operation, dict) and "responses" in operation:
                _complete_operation(path, method, operation)
    return spec


class OpenAPIDocument:
    """Answers GET /docs.json with `complete_spec(build())`, built once on first request."""

    def __init__(self, app: ASGIApp, build: Callable[[], dict[str, Any]]) -> None:
        self.app = app
        self.build = build
        self._body: bytes | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["path"] != "/docs.json" or scope["method"] != "GET":
            await self.app(scope, receive, send)
            return
        if self._body is None:  # the routes do not change after start-up
            try:
                self._body = orjson.dumps(complete_spec(self.build()))
            except Exception:
                logger.exception("building /docs.json failed")
                await send_json_error(send, 500, "the OpenAPI document could not be built")
                return
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(self._body)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": self._body})

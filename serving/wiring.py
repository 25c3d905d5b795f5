"""How the intent service is put together: its BentoML options and the ASGI middleware around it.

serving/service.py declares the endpoints; this module holds what wraps them, from settings
read once at import: workers, timeouts, access log, tracing and CORS for `@bentoml.service`,
then the guards, /docs.json and the rate limit in front of every route.
"""

from __future__ import annotations

from typing import Any, TypeVar

import bentoml

from serving.guards import BodyLimitGuard, JsonContentTypeGuard
from serving.metric_labels import label_metrics_by_route
from serving.openapi import OpenAPIDocument
from serving.ratelimit import RateLimitMiddleware
from serving.route_errors import JsonRouteErrors, RelativeChatRedirect
from serving.settings import ServingSettings

T = TypeVar("T")


def service_options(settings: ServingSettings) -> dict[str, Any]:
    """The keyword arguments of `@bentoml.service` for these settings.

    Keys as BentoML's `ServiceConfig` TypedDict (_bentoml_sdk/service/config.py) names them;
    that module ships no type information, so mypy cannot check them against it.
    """
    return {
        "workers": settings.workers,
        "traffic": {"timeout": 30},
        # Measured in bench/serve.py: per-request access logging and tracing spans cost more
        # than the model itself on this hot path; both stay available through settings.
        "logging": {"access": {"enabled": settings.access_log}},
        # A traced WebSocket gets a span per frame sent and received: the chat tier is never
        # traced.
        "tracing": {
            "excluded_urls": ["/chat/ws"]
            if settings.tracing
            else ["/predict", "/batch_predict", "/chat/ws"]
        },
        "http": {
            "cors": {
                "enabled": bool(settings.cors_origins),
                "access_control_allow_origins": settings.cors_origins,
                "access_control_allow_credentials": settings.cors_allow_credentials,
                "access_control_allow_methods": ["GET", "POST", "OPTIONS"],
                "access_control_allow_headers": [
                    "content-type",
                    "x-api-key",
                    "x-client-id",
                    "authorization",  # an agent's token for /feedback
                ],
            }
        },
    }


def assemble(decorated: type[T], settings: ServingSettings) -> bentoml.Service[T]:
    """The Service `@bentoml.service` made of the class, with its middleware added.

    The guards, the completed /docs.json and the optional rate limit wrap every route.
    """
    service = _as_service(decorated)
    # Before BentoML builds the app: its request metrics were labelled by any path sent.
    label_metrics_by_route()
    service.add_asgi_middleware(JsonRouteErrors)
    service.add_asgi_middleware(RelativeChatRedirect)
    service.add_asgi_middleware(JsonContentTypeGuard)
    service.add_asgi_middleware(
        BodyLimitGuard, max_bytes=settings.body_limit_bytes, timeout_s=settings.body_timeout_s
    )
    service.add_asgi_middleware(OpenAPIDocument, build=lambda: service.openapi_spec.asdict())
    if settings.rate_limit_per_s > 0:
        service.add_asgi_middleware(
            RateLimitMiddleware,
            rate=settings.rate_limit_per_s,
            burst=settings.rate_limit_burst,
            redis_url=settings.rate_limit_redis_url,
            trusted_peers=settings.rate_limit_trusted_peers,
        )
    return service


def _as_service(decorated: object) -> bentoml.Service[Any]:
    """The class decorated by `@bentoml.service` (mypy does not apply class decorators)."""
    if not isinstance(decorated, bentoml.Service):
        raise TypeError(f"{decorated!r} is not a BentoML service")
    return decorated

"""BentoML's request metrics labelled by the route that served a request, not by its raw path.

BentoML's traffic middleware (`RunnerTrafficMetricsMiddleware`) labels its series with
`scope["path"]` as the client sent it: every distinct path (`/x1`, `/x2`, `/chat/static/x3`, ...)
added about 20 series to each worker's registry, to the multiprocess files and to every /metrics
answer, for the life of the process. Anyone who could reach the port grew them without bound.
Here the label is the route's template (`/predict`, `/chat/static/{path}`), and a path that no
route serves is counted under `UNMATCHED`.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from bentoml._internal.server.http import instruments
from starlette.routing import BaseRoute, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

UNMATCHED = "/{unmatched}"
# The request's own path, carried past the metrics middleware under a key of ours.
_REAL_PATH = "supportloop.real_path"


def route_label(routes: Iterable[BaseRoute], path: str, prefix: str = "") -> str:
    """The template of the route serving `path` (mounts searched inside), else `UNMATCHED`."""
    for route in routes:
        if isinstance(route, Mount):
            if path != route.path and not path.startswith(route.path + "/"):
                continue
            inner = list(getattr(route.app, "routes", None) or ())
            if not inner:  # an app without routes of its own, e.g. StaticFiles
                return f"{prefix}{route.path}/{{path}}"
            return route_label(inner, path[len(route.path) :] or "/", prefix + route.path)
        template = getattr(route, "path", None)
        regex = getattr(route, "path_regex", None)
        if template is not None and regex is not None and regex.match(path):
            return f"{prefix}{template}"
    return UNMATCHED


class _RealPath:
    """Gives the app inside the metrics middleware the request's own path back."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Route the request by the path the client sent."""
        if _REAL_PATH in scope:
            scope = {**scope, "path": scope[_REAL_PATH]}
            del scope[_REAL_PATH]
        await self.app(scope, receive, send)


class RouteLabelledTrafficMetrics(instruments.RunnerTrafficMetricsMiddleware):
    """BentoML's traffic metrics with the route's template as the `endpoint` label."""

    def __init__(self, app: ASGIApp, **options: Any) -> None:
        super().__init__(_RealPath(app), **options)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request under its route's label; route it by its own path."""
        # Starlette puts the application in the scope before its middleware runs.
        app = scope.get("app")
        if scope["type"] in ("http", "websocket") and app is not None:
            label = route_label(getattr(app, "routes", ()), scope["path"])
            if label != scope["path"]:
                scope = {**scope, "path": label, _REAL_PATH: scope["path"]}
        await super().__call__(scope, receive, send)


def label_metrics_by_route() -> None:
    """Make BentoML build its traffic metrics middleware from `RouteLabelledTrafficMetrics`.

    BentoML imports the middleware class by name when it builds the app (in the worker, after
    the service module is imported), so replacing the module's attribute at import is enough.
    """
    # A module attribute replaced on purpose (mypy refuses assigning to a class name).
    setattr(instruments, "RunnerTrafficMetricsMiddleware", RouteLabelledTrafficMetrics)  # noqa: B010

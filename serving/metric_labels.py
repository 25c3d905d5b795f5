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
from starlette.routing import BaseRoute, Match, Mount
from starlette.types import ASGIApp, Receive, Scope, Send

UNMATCHED = "/{unmatched}"
# The request's own path, carried past the metrics middleware under a key of ours.
_REAL_PATH = "supportloop.real_path"


def route_label(routes: Iterable[BaseRoute], scope: Scope, prefix: str = "") -> str | None:
    """The template of the route Starlette would pick for `scope`, mounts searched inside.

    Matched as Starlette matches (`BaseRoute.matches`: BentoML's passive mounts match only
    when a route inside does; a wrong method is a partial match, still that route's label);
    None when no route matches.
    """
    partial = None
    for route in routes:
        match, child = route.matches(scope)
        if match is Match.NONE:
            continue
        label = _label_of(route, {**scope, **child}, prefix)
        if match is Match.FULL and label is not None:
            return label
        partial = partial or label
    return partial


def _label_of(route: BaseRoute, scope: Scope, prefix: str) -> str | None:
    if isinstance(route, Mount):
        inner = list(getattr(route.app, "routes", None) or ())
        if not inner:  # an app without routes of its own, e.g. StaticFiles
            return f"{prefix}{route.path}/{{path}}"
        return route_label(inner, scope, prefix + route.path)
    router = getattr(route, "original_router", None)  # FastAPI's included router
    if router is not None:
        return route_label(router.routes, scope, prefix)
    template = getattr(route, "path", None)
    return f"{prefix}{template}" if isinstance(template, str) else None


class _Labels:
    """Labels of the paths seen, so a request costs one dict lookup, not a route search."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self.known: dict[tuple[str, str, str], str] = {}

    def of(self, scope: Scope) -> str:
        """The label of `scope`'s route, else `UNMATCHED`."""
        key = (scope["type"], scope.get("method", ""), scope["path"])
        label = self.known.get(key)
        if label is None:
            app = scope.get("app")
            label = route_label(getattr(app, "routes", ()), scope) or UNMATCHED
            # Only paths a route serves are kept: made-up ones would fill the table.
            if label != UNMATCHED and len(self.known) < self.size:
                self.known[key] = label
        return label


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
        self._labels = _Labels()

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        """Count the request under its route's label; route it by its own path."""
        # Starlette puts the application in the scope before its middleware runs.
        if scope["type"] in ("http", "websocket") and scope.get("app") is not None:
            label = self._labels.of(scope)
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

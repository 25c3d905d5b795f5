"""Start-up checks `bentoml serve` makes in its CLI process, before it binds or starts a worker.

BentoML imports the service module in the `bentoml serve` process first, then in every worker.
A problem found in a worker (no champion, a store that is not there) kills the worker, and the
arbiter restarts it forever. Found in the CLI process, the same problem ends the command: one
line on stderr naming what to fix, exit code 2, no traceback (a SystemExit raised while BentoML
imports the module leaves it untouched). Outside `bentoml serve` (tests, workers) the original
exception is raised as before.
"""

from __future__ import annotations

import logging
import sys
from typing import NoReturn, TypeVar

from pydantic_settings import BaseSettings

from models.registry import IntentRegistry, ModelLoadError, RegistryConfig
from models.settings_errors import SettingsProblem, load_settings
from models.tracking_store import TrackingStoreMissing, redact, require_store
from serving.chat.exposure import DevLoginExposed, refuse_exposed_dev_login, serve_command_host
from serving.settings import ServingSettings

logger = logging.getLogger("serving")
SettingsT = TypeVar("SettingsT", bound=BaseSettings)
EXIT_REFUSED = 2


class NoChampion(RuntimeError):
    """The registry has no usable version under the alias the service serves."""


def in_serve_command() -> bool:
    """True in the `bentoml serve` CLI process (not in its workers, not in tests)."""
    return serve_command_host() is not None


def refuse(problem: Exception) -> NoReturn:
    """End `bentoml serve` with one line naming the problem (exit code 2)."""
    print(f"error: {problem}", file=sys.stderr, flush=True)
    raise SystemExit(EXIT_REFUSED)


def load_or_refuse(settings_cls: type[SettingsT]) -> SettingsT:
    """The settings; a bad value ends `bentoml serve` with one line (SettingsProblem elsewhere)."""
    try:
        return load_settings(settings_cls)
    except SettingsProblem as problem:
        if in_serve_command():
            refuse(problem)
        raise


def require_champion(settings: ServingSettings) -> None:
    """Raise unless the store exists and the alias names a complete version."""
    variable = "SERVING_MLFLOW_TRACKING_URI or MLFLOW_TRACKING_URI"
    require_store(settings.mlflow_tracking_uri, variable)
    if settings.mlflow_registry_uri:
        require_store(settings.mlflow_registry_uri, "MLFLOW_REGISTRY_URI")
    registry = IntentRegistry(
        RegistryConfig(
            settings.mlflow_tracking_uri, settings.mlflow_registry_uri, settings.model_name
        )
    )
    where = redact(settings.mlflow_registry_uri or settings.mlflow_tracking_uri)
    target = registry.version_by_alias(settings.model_alias)
    if target is None:
        raise NoChampion(
            f"registered model {settings.model_name!r} has no version with alias "
            f"{settings.model_alias!r} at {where}: run `make pipeline` first, or set {variable}"
        )
    try:
        registry.require_complete(str(target.version))
    except (LookupError, ModelLoadError) as problem:
        raise NoChampion(f"alias {settings.model_alias!r} at {where}: {problem}") from None


def check_before_binding(settings: ServingSettings, dev_login: bool) -> None:
    """Refuse to serve what cannot work: dev login off loopback, nothing to serve."""
    try:
        refuse_exposed_dev_login(dev_login)  # workers check their own socket too
        if in_serve_command():
            require_champion(settings)
    except (DevLoginExposed, TrackingStoreMissing, NoChampion) as problem:
        if in_serve_command():
            refuse(problem)
        raise

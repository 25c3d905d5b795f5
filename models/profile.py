"""The deployment profile: one switch, `SUPPORTLOOP_PROFILE`, between one machine and several.

`embedded` (the default) runs everything from files on one machine: SQLite stores, a local MLflow
database, in-process chat fan-out and rate limits; nothing has to be running first.

`production` means every store is a server: the conversation store on PostgreSQL, MLflow behind
its tracking server (HTTP only), Redis for the chat tier's fan-out and the shared rate limit,
PostgreSQL for Dagster's instance. The profile fills in no URL (they stay the operator's, in the
environment or `.env`; `deploy/production.env.example` lists them): it checks that each URL an
entry point needs is set and has the right scheme. Each settings class names its URLs and calls
`require_servers` from a validator, so a missing one fails `load_settings` with one line naming
the variable (exit code 2 at every entry point) instead of quietly writing to a local SQLite file
on a machine that was meant to share its state. It lives in `models` because every tier uses it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from pydantic import Field, SecretStr
from pydantic_settings import BaseSettings

from models.settings_errors import env_name

PROFILE_VARIABLE = "SUPPORTLOOP_PROFILE"


class Profile(StrEnum):
    """Where the product keeps its state."""

    EMBEDDED = "embedded"
    PRODUCTION = "production"


@dataclass(frozen=True)
class ServerUrl:
    """A server URL the production profile needs: its variable and the schemes it may have."""

    variable: str
    schemes: tuple[str, ...]
    what: str
    # An optional URL may stay unset (another one stands in), but when set it is checked.
    required: bool = True


POSTGRES_STORE = ServerUrl(
    "CONVERSATION_STORE_URL", ("postgresql",), "the conversation store on PostgreSQL"
)
TRACKING_SERVER = ServerUrl(
    "MLFLOW_TRACKING_URI", ("http://", "https://"), "the MLflow tracking server's URL"
)
# Unset, the registry is the tracking server; set, it must be a server too, never its database.
REGISTRY_SERVER = ServerUrl(
    "MLFLOW_REGISTRY_URI", ("http://", "https://"), "the MLflow registry server's URL", False
)
REDIS = ServerUrl("CHAT_BROKER_URL", ("redis://", "rediss://"), "Redis for the chat fan-out")
DAGSTER_STORAGE = ServerUrl(
    "DAGSTER_PG_URL", ("postgresql",), "Dagster's instance storage on PostgreSQL"
)


def store_and_registry(store_field: str) -> dict[str, ServerUrl]:
    """The servers of a tier that reads the conversation store and the registry, by field name."""
    return {
        store_field: POSTGRES_STORE,
        "mlflow_tracking_uri": TRACKING_SERVER,
        "mlflow_registry_uri": REGISTRY_SERVER,
    }


def profile_field() -> Any:
    """The `profile` field of a settings class: always `SUPPORTLOOP_PROFILE`, whatever prefix."""
    return Field(
        Profile.EMBEDDED,
        validation_alias=PROFILE_VARIABLE,
        description="embedded (files on one machine) or production (every store a server)",
    )


def _value(settings: BaseSettings, field: str) -> str:
    value = getattr(settings, field)
    if isinstance(value, SecretStr):
        value = value.get_secret_value()
    return str(value or "")


def require_servers(settings: BaseSettings, servers: Mapping[str, ServerUrl]) -> None:
    """Under the production profile, raise naming every URL (field → server) unset or wrong.

    A URL counts as set when it came from the environment, `.env` or the caller, not from the
    embedded default. Values are never echoed: they hold passwords.
    """
    if getattr(settings, "profile", Profile.EMBEDDED) is not Profile.PRODUCTION:
        return
    problems = []
    for field, server in servers.items():
        value = _value(settings, field)
        if field not in settings.model_fields_set or not value:
            if not server.required:
                continue
            problems.append(f"{server.variable} is not set ({server.what})")
        elif not value.startswith(server.schemes):
            # A prefixed variable (SERVING_STORE_URL) may be the one set: name that one.
            variable = env_name(type(settings), field)
            schemes = " or ".join(server.schemes)
            problems.append(f"{variable} must be {server.what} (a {schemes} URL)")
    if problems:
        raise ValueError(f"{PROFILE_VARIABLE}=production: {'; '.join(problems)}")

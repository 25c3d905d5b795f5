"""Is the MLflow tracking store there? Asked before a read-only command or a server starts.

MLflow creates a missing SQLite database on first contact and answers "no such model" from it,
so a mistyped MLFLOW_TRACKING_URI looks like an empty registry (`champion: null`); an
unreachable tracking server costs minutes of retries before the real error surfaces. Commands
that only read (or move an alias) check first and fail with one line instead.
"""

from __future__ import annotations

import urllib.error
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

from sqlalchemy.engine import make_url

PROBE_TIMEOUT_S = 5.0
# Store schemes this project runs on (a database URL may name its driver: postgresql+psycopg).
DATABASE_SCHEMES = ("sqlite", "postgresql", "mysql", "mssql")
SERVER_SCHEMES = ("http", "https", "databricks", "databricks-uc", "uc")


class TrackingStoreMissing(RuntimeError):
    """The tracking store does not exist (SQLite file) or does not answer (server)."""


def _host_port(uri: str) -> str:
    parts = urlsplit(uri)
    host = parts.hostname or ""
    host = f"[{host}]" if ":" in host else host  # an IPv6 address keeps its brackets
    return host + (f":{parts.port}" if parts.port else "")


def redact(uri: str) -> str:
    """`uri` without a password, safe to print."""
    parts = urlsplit(uri)
    if parts.password is None:
        return uri
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{_host_port(uri)}"))


def sqlite_path(uri: str) -> Path | None:
    """The database file of a `sqlite:///` URI; None for other schemes and in-memory SQLite."""
    if not uri.startswith("sqlite:"):
        return None
    database = make_url(uri).database
    if not database or database == ":memory:":
        return None
    return Path(database)


def http_artifact_url(artifact_uri: str, tracking_uri: str) -> str:
    """`artifact_uri` as a URL anyone can fetch; a `mlflow-artifacts:/` URI via its server.

    MLflow resolves no dataset source for `mlflow-artifacts:/` (the proxied artifacts of a
    tracking server), so a dataset logged from one names the server's HTTP download URL
    instead, without the credentials of `tracking_uri`. Other URIs are returned as they are.
    """
    if not artifact_uri.startswith("mlflow-artifacts:"):
        return artifact_uri
    from mlflow.store.artifact.mlflow_artifacts_repo import MlflowArtifactsRepository

    return without_credentials(MlflowArtifactsRepository.resolve_uri(artifact_uri, tracking_uri))


def without_credentials(url: str) -> str:
    """`url` without its `user:password@`, for a link or a record others can read."""
    return urlunsplit(urlsplit(url)._replace(netloc=_host_port(url)))


def require_store(uri: str, variable: str = "MLFLOW_TRACKING_URI") -> None:
    """Raise TrackingStoreMissing unless `uri`'s SQLite file exists or its server answers.

    Databricks and database servers are left to MLflow. A scheme MLflow cannot use, or a plain
    path (an MLflow file store, refused by MLflow 3), is one line too. `variable` is the setting
    the message tells people to fix.
    """
    scheme = urlsplit(uri).scheme.split("+")[0].lower()
    if scheme not in (*DATABASE_SCHEMES, *SERVER_SCHEMES):
        raise TrackingStoreMissing(
            f"{variable} must be a sqlite:///path, http(s):// or database URL, not {redact(uri)!r}"
        )
    path = sqlite_path(uri)
    if path is not None:
        if not path.is_file():
            raise TrackingStoreMissing(
                f"no MLflow database at {path}: run `make pipeline` first or set {variable}"
            )
        return
    if uri.startswith(("http://", "https://")):
        _probe(uri, variable)


def _probe(uri: str, variable: str) -> None:
    # Any HTTP answer, even an error status, proves a server is there; MLflow reports the rest.
    # urllib takes no user:password@ in a URL: the probe needs no credentials anyway.
    bare = urlsplit(uri)._replace(netloc=_host_port(uri))
    try:
        with urllib.request.urlopen(
            f"{urlunsplit(bare).rstrip('/')}/health", timeout=PROBE_TIMEOUT_S
        ):
            return
    except urllib.error.HTTPError:
        return
    except (urllib.error.URLError, OSError, ValueError) as problem:
        reason = getattr(problem, "reason", problem)
        raise TrackingStoreMissing(
            f"MLflow tracking server {redact(uri)} is unreachable ({reason}): start it or set "
            f"{variable}"
        ) from None

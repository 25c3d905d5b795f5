"""The production profile's registry: `mlflow server` on PostgreSQL, used over HTTP only.

One tracking server for the module, its backend store a fresh database of the session's real
PostgreSQL (tests/postgres.py) and its artifacts proxied (`--serve-artifacts`). Models are
trained and registered through its URL, and the rows are read back from PostgreSQL itself.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pandas as pd
import pytest
import sqlalchemy as sa

from models.registry import IntentRegistry, RegistryConfig
from tests.conftest import register_version
from tests.mlflow_server import MlflowServer, running_mlflow_server
from tests.postgres import PostgresServer
from tests.serving.conftest import ServiceProcess, service_env

pytestmark = pytest.mark.slow
MODEL = "intent-classifier"
# Variables of the machine's own that would point the service elsewhere.
SERVER_VARS = ("MLFLOW_REGISTRY_URI", "SERVING_MLFLOW_REGISTRY_URI")


def register_on_server(examples: pd.DataFrame, registry: IntentRegistry) -> str:
    """Register a quick model with no artifact root: the server's own (`mlflow-artifacts:/`)."""
    return register_version(examples, registry, None, "server-tests")


@pytest.fixture(scope="module")
def backend_url(postgres_server: PostgresServer) -> str:
    """A fresh PostgreSQL database for the tracking server's backend store."""
    return postgres_server.create_database(f"mlflow_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def pg_mlflow_server(tmp_path_factory, backend_url: str) -> Iterator[MlflowServer]:
    """A real `mlflow server` whose backend store is PostgreSQL, for this module."""
    root = tmp_path_factory.mktemp("mlflow_pg_server")
    with running_mlflow_server(root, backend_uri=backend_url) as server:
        yield server


@pytest.fixture(scope="module")
def champion(pg_mlflow_server: MlflowServer, small_slice: pd.DataFrame) -> str:
    """A version trained and promoted through the server's URL; returns it."""
    registry = IntentRegistry(RegistryConfig(pg_mlflow_server.uri))
    version = register_on_server(small_slice, registry)
    registry.promote(version)
    return version


def test_a_version_registered_over_http_lands_in_postgresql_and_reads_back(
    pg_mlflow_server: MlflowServer, backend_url: str, champion: str, tmp_path: Path
):
    registry = IntentRegistry(RegistryConfig(pg_mlflow_server.uri))
    assert str(registry.version_by_alias("champion").version) == champion
    download = registry.client.get_model_version_download_uri(MODEL, champion)
    assert download.startswith("mlflow-artifacts:/"), download
    # The server keeps the registry in PostgreSQL, not in a file beside it.
    engine = sa.create_engine(backend_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT version FROM model_versions WHERE name = :name"), {"name": MODEL}
            ).all()
            alias = connection.execute(
                sa.text("SELECT version FROM registered_model_aliases WHERE alias = 'champion'")
            ).scalar_one()
    finally:
        engine.dispose()
    assert [str(row.version) for row in rows] == [champion]
    assert str(alias) == champion
    assert not (pg_mlflow_server.root / "mlflow.db").exists()
    # A client that knows only the URL loads the version and answers with it.
    inference = registry.load_inference(champion)
    [document] = inference.predict_documents(["my card has not arrived yet"], None, 1)
    assert document["intent"] and 0 <= document["confidence"] <= 1


@pytest.fixture(scope="module")
def served_from_server(
    pg_mlflow_server: MlflowServer, champion: str, tmp_path_factory
) -> Iterator[ServiceProcess]:
    """A real `bentoml serve` that knows the registry only as MLFLOW_TRACKING_URI=http://…."""
    root = tmp_path_factory.mktemp("serving_on_server")
    env = service_env({"root": root, "config": RegistryConfig(pg_mlflow_server.uri)})
    env = {k: v for k, v in env.items() if k not in ("SERVING_MLFLOW_TRACKING_URI", *SERVER_VARS)}
    process = ServiceProcess(env | {"MLFLOW_TRACKING_URI": pg_mlflow_server.uri})
    process.start()
    yield process
    process.stop()


def _served_version(service: ServiceProcess) -> str:
    return str(httpx.get(f"{service.url}/version", timeout=10).json()["version"])


def test_serving_follows_a_promotion_made_through_the_server(
    pg_mlflow_server: MlflowServer,
    champion: str,
    served_from_server: ServiceProcess,
    banking77_train: pd.DataFrame,
):
    assert _served_version(served_from_server) == champion
    registry = IntentRegistry(RegistryConfig(pg_mlflow_server.uri))
    intents = sorted(banking77_train["category"].unique())[6:12]
    examples = banking77_train[banking77_train["category"].isin(intents)]
    challenger = register_on_server(examples.groupby("category").head(30), registry)
    downloads = _artifact_downloads(pg_mlflow_server)

    registry.promote(challenger)
    # The service polls the alias every second (SERVING_POLL_INTERVAL_S=1); a download and a
    # warm-up later it answers with the new version. Wait on progress, not on a clock.
    for _ in range(240):
        if _served_version(served_from_server) == challenger:
            break
        time.sleep(0.5)
    assert _served_version(served_from_server) == challenger
    answer = httpx.post(
        f"{served_from_server.url}/predict", json={"text": "I lost my card"}, timeout=30
    ).json()
    assert answer["model"]["version"] == challenger
    assert answer["intent"] in {*intents, "nlu_fallback"}
    # The new model came through the server's artifact proxy.
    assert _artifact_downloads(pg_mlflow_server) > downloads


def _artifact_downloads(server: MlflowServer) -> int:
    log = server.log.read_text(errors="replace")
    return log.count('"GET /api/2.0/mlflow-artifacts/artifacts/')

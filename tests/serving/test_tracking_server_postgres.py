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

import pandas as pd
import pytest
import sqlalchemy as sa

from models.candidates import resolve
from models.registry import IntentRegistry, RegistryConfig
from models.splits import assign_splits
from models.tracking import log_and_register
from models.training import train_intent_model
from tests.mlflow_server import MlflowServer, running_mlflow_server
from tests.postgres import PostgresServer

pytestmark = pytest.mark.slow
MODEL = "intent-classifier"


def register_on_server(examples: pd.DataFrame, registry: IntentRegistry) -> str:
    """Train a quick model on `examples` (text, category) and register it with no artifact root.

    No root: the experiment takes the server's own (`mlflow-artifacts:/`), as a client on
    another machine would.
    """
    frame = examples.rename(columns={"category": "intent"}).assign(context="{}")
    frame["split"] = assign_splits(frame["text"].tolist(), frame["intent"].tolist())
    splits = [frame[frame["split"] == name] for name in ("train", "validation", "test")]
    outcome = train_intent_model(resolve(["tfidf_logreg"]), *splits)
    version = log_and_register(
        outcome,
        registry,
        "server-tests",
        None,
        f"fp-{time.time_ns()}",
        {},
        {},
        reference=pd.concat([splits[0], splits[2]]),
    )
    return str(version.version)


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

"""Dagster's instance storage on a real PostgreSQL server (dagster-postgres, tests/postgres.py).

The instance is the repository's dagster.yaml with the storage block its comment documents for
PostgreSQL: the URL (with its password) comes from an environment variable, never the file.
"""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from tests.conftest import REPO_ROOT
from tests.postgres import PostgresServer

URL_VARIABLE = "DAGSTER_PG_URL"


@dg.asset
def greeting() -> str:
    """The cheapest asset there is."""
    return "hello"


def postgres_instance_yaml() -> str:
    """The repository's dagster.yaml with PostgreSQL storage read from $DAGSTER_PG_URL."""
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text(encoding="utf-8"))
    config["storage"] = {"postgres": {"postgres_url": {"env": URL_VARIABLE}}}
    return yaml.safe_dump(config, sort_keys=False)


def test_runs_and_events_land_in_postgres(
    postgres_server: PostgresServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    database_url = postgres_server.create_database("dagster_instance")
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(postgres_instance_yaml(), encoding="utf-8")
    # dagster-postgres binds its NOTIFY the psycopg2 way; SQLAlchemy 2.1 maps a bare
    # postgresql:// to psycopg 3, whose server-side binding refuses it: name the driver.
    monkeypatch.setenv(URL_VARIABLE, postgres_server.url("dagster_instance", driver="psycopg2"))
    monkeypatch.setenv("DAGSTER_HOME", str(home))

    with dg.DagsterInstance.get() as instance:
        result = dg.materialize([greeting], instance=instance)
        storage_data = instance.get_ref().storage_data
        assert storage_data is not None
        stored_config = storage_data.config_yaml
        assert result.success
        assert instance.get_run_by_id(result.run_id) is not None
        assert instance.get_latest_materialization_event(dg.AssetKey("greeting")) is not None

    assert URL_VARIABLE in stored_config and postgres_server.password not in stored_config
    engine = sa.create_engine(database_url)
    try:
        with engine.connect() as connection:
            runs = connection.execute(sa.text("SELECT run_id, status FROM runs")).all()
            materialized = connection.scalar(
                sa.text(
                    "SELECT count(*) FROM event_logs"
                    " WHERE dagster_event_type = 'ASSET_MATERIALIZATION'"
                    " AND asset_key LIKE '%greeting%'"
                )
            )
    finally:
        engine.dispose()
    assert runs == [(result.run_id, "SUCCESS")]
    assert materialized == 1
    # Nothing of the run went to a SQLite file in DAGSTER_HOME.
    assert not list(home.rglob("*.db"))

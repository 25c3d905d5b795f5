"""Dagster's instance storage on a real PostgreSQL server (dagster-postgres, tests/postgres.py).

The instance is the repository's dagster.yaml with the storage block its comment documents for
PostgreSQL: the URL (with its password) comes from an environment variable, never the file.
"""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest
import sqlalchemy as sa
import yaml

from conversations import store_engine
from conversations.schema import Speaker
from conversations.writer import MessageRecord, insert_message
from models.settings_errors import load_settings
from monitoring.settings import MonitoringSettings
from pipelines.definitions import build_resources
from pipelines.resources import ConversationSources
from pipelines.settings import PipelineSettings
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


@dg.asset
def store_url_seen(sources: ConversationSources) -> str:
    """What a run's resource holds once Dagster has resolved its config."""
    return sources.store_url or ""


def test_store_password_is_an_env_var_on_the_resource_page(
    postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = postgres_server.url("conversations")
    monkeypatch.setenv("CONVERSATION_STORE_URL", url)
    resources = build_resources(load_settings(PipelineSettings), load_settings(MonitoringSettings))

    for name in ("sources", "monitoring"):
        resource = resources[name]
        assert isinstance(resource, dg.ConfigurableResource)
        # What the Dagster UI's resource page shows (ResourceSnap.configured_values).
        shown = resource.get_resource_definition().config_schema.default_value_as_json_str
        assert postgres_server.password not in shown
        assert '"store_url": {"env": "CONVERSATION_STORE_URL"}' in shown
    result = dg.materialize([store_url_seen], resources={"sources": resources["sources"]})
    assert result.output_for_node("store_url_seen") == url


def test_a_url_without_password_stays_a_plain_value(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("CONVERSATION_STORE_URL", "sqlite:////tmp/store.db")
    resources = build_resources(load_settings(PipelineSettings), load_settings(MonitoringSettings))
    sources = resources["sources"]
    assert isinstance(sources, ConversationSources)
    assert sources.store_url == "sqlite:////tmp/store.db"
    assert not isinstance(sources.store_url, dg.EnvVar)


def test_ingestion_reads_a_postgres_store_and_sees_it_change(
    postgres_url: str, tmp_path: Path
) -> None:
    sources = ConversationSources(store_url=postgres_url, jsonl_dir=str(tmp_path / "none"))
    engine = store_engine.create_engine(postgres_url)

    def add(message_id: str, text: str) -> None:
        record = MessageRecord(
            message_id=message_id,
            conversation_id="c-1",
            turn=0,
            ts=datetime.now(UTC),
            speaker=Speaker.CUSTOMER,
            text=text,
        )
        with engine.begin() as connection:
            insert_message(connection, record)

    add("m-1", "Where is my card?")
    first = sources.fingerprint()
    rows = sources.read_all()
    add("m-2", "My card still has not arrived")
    engine.dispose()

    assert list(rows["message_id"]) == ["m-1"]
    assert rows["source"].iloc[0].startswith("store:postgresql+psycopg://supportloop:***@")
    assert sources.fingerprint() != first  # the new-conversations sensor's trigger
    assert list(sources.read_all()["message_id"]) == ["m-1", "m-2"]

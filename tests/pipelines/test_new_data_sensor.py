"""The new-data sensor, evaluated on a real Dagster instance over a SQLite store: it fires on new
labels or a volume of new messages, not on every chat message."""

from __future__ import annotations

from datetime import UTC, datetime
from itertools import count
from pathlib import Path

import dagster as dg
import pytest

from conversations import store_engine
from conversations.schema import LabelSource, LabelTrust, Speaker
from conversations.writer import LabelRecord, MessageRecord, insert_label, insert_message
from models.settings_errors import SettingsProblem, load_settings
from pipelines.automation import new_conversations_sensor
from pipelines.resources import ConversationSources
from pipelines.settings import PipelineSettings

MIN_MESSAGES = 5
_ids = count()


@pytest.fixture
def store(tmp_path: Path) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store_engine.create_engine(url).dispose()
    return url


def add_messages(store_url: str, n: int) -> None:
    """`n` unlabelled customer messages, as the chat tier writes them."""
    engine = store_engine.create_engine(store_url)
    with engine.begin() as connection:
        for _ in range(n):
            number = next(_ids)
            insert_message(
                connection,
                MessageRecord(
                    message_id=f"m-{number}",
                    conversation_id=f"c-{number}",
                    turn=0,
                    ts=datetime.now(UTC),
                    speaker=Speaker.CUSTOMER,
                    text="where is my card",
                ),
            )
    engine.dispose()


def add_label(store_url: str) -> None:
    """One agent label."""
    engine = store_engine.create_engine(store_url)
    with engine.begin() as connection:
        insert_label(
            connection,
            LabelRecord(
                text="where is my card",
                intent="card_arrival",
                label_source=LabelSource.AGENT,
                trust=LabelTrust.AGENT,
                ts=datetime.now(UTC),
            ),
        )
    engine.dispose()


class Sensor:
    """Evaluates the sensor tick after tick on one Dagster instance, carrying its cursor."""

    def __init__(self, instance: dg.DagsterInstance, sources: ConversationSources) -> None:
        self.instance, self.sources, self.cursor = instance, sources, None

    def tick(self) -> dg.SensorExecutionData:
        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources={"sources": self.sources}
        ) as context:
            result = new_conversations_sensor.evaluate_tick(context)
        self.cursor = result.cursor
        return result


@pytest.fixture
def sensor(store: str, tmp_path: Path):
    sources = ConversationSources(
        store_url=store,
        jsonl_dir=str(tmp_path / "incoming"),
        lake_dir=str(tmp_path / "lake"),
        new_data_min_messages=MIN_MESSAGES,
    )
    with dg.instance_for_test() as instance:
        evaluated = Sensor(instance, sources)
        add_messages(store, 3)
        assert not evaluated.tick().run_requests  # the baseline
        yield evaluated


def test_one_new_unlabelled_message_does_not_request_a_run(sensor, store):
    add_messages(store, 1)
    tick = sensor.tick()
    assert not tick.run_requests
    assert "1 new customer messages (a run needs 5)" in (tick.skip_message or "")


def test_enough_new_messages_request_a_run_once(sensor, store):
    for _ in range(MIN_MESSAGES - 1):  # one at a time, as a chat arrives: they add up
        add_messages(store, 1)
        assert not sensor.tick().run_requests
    add_messages(store, 1)
    (request,) = sensor.tick().run_requests
    assert request.tags["trigger"] == f"new data: {MIN_MESSAGES} new customer messages"
    assert not sensor.tick().run_requests  # counted from the run it requested


def test_one_new_label_requests_a_run(sensor, store):
    add_label(store)
    (request,) = sensor.tick().run_requests
    assert request.tags["trigger"] == "new data: 1 new labels"


def test_the_volume_setting_is_checked_at_start(monkeypatch):
    monkeypatch.setenv("NEW_DATA_MIN_MESSAGES", "0")
    with pytest.raises(SettingsProblem, match="NEW_DATA_MIN_MESSAGES"):
        load_settings(PipelineSettings)

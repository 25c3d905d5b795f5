"""The monitoring window sees predictions answered over HTTP beside the chat tier's."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from conversations import store_engine
from conversations.schema import Speaker
from conversations.writer import (
    MessageRecord,
    PredictionRecord,
    insert_message,
    insert_predictions,
)
from monitoring.data import read_current
from monitoring.window import Window


def prediction(message_id: str, ts: datetime, **fields: object) -> PredictionRecord:
    return PredictionRecord(
        message_id=message_id,
        intent="card_arrival",
        confidence=0.9,
        fallback=False,
        model_name="intent-classifier",
        model_version="3",
        ts=ts,
        **fields,  # type: ignore[arg-type]
    )


def test_the_window_counts_http_predictions_by_channel(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    now = datetime.now(UTC)
    engine = store_engine.create_engine(url)
    with engine.begin() as connection:
        insert_message(
            connection,
            MessageRecord(
                "m-1", "room-1", 0, now, Speaker.CUSTOMER, "where is my card", None, "chat"
            ),
        )
        insert_predictions(
            connection,
            [
                prediction("m-1", now, channel="chat"),
                prediction("http-1", now, channel="http", text="card not here", session_id="s"),
                prediction("http-2", now, channel="http", text_sha256="ab" * 32),
                prediction("http-old", now - timedelta(days=9), channel="http", text="old"),
            ],
        )
    engine.dispose()
    current = read_current(url, Window(now - timedelta(days=1), now + timedelta(seconds=1)))
    rows = current.messages.set_index("message_id")
    assert sorted(rows.index) == ["http-1", "http-2", "m-1"]
    assert rows["channel"].to_dict() == {"m-1": "chat", "http-1": "http", "http-2": "http"}
    assert rows.loc["http-1", "text"] == "card not here"
    assert rows.loc["http-1", "conversation_id"] == "s"
    assert rows.loc["http-2", "text"] is None  # recorded as a hash: never the words
    assert (rows["model_version"] == "3").all()

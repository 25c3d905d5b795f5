"""The conversation store on a real PostgreSQL server (tests/postgres.py): tables, writer, reads."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa

from conversations import store_engine, tables
from conversations.readers import read_conversation_store
from conversations.schema import LabelSource, LabelTrust, Speaker
from conversations.writer import (
    LabelRecord,
    MessageRecord,
    PredictionRecord,
    insert_label,
    insert_message,
    insert_prediction,
    insert_prediction_rows,
)
from tests.conversations.awkward_predictions import awkward_prediction_rows

T0 = datetime(2026, 11, 20, 9, 30, tzinfo=UTC)


def test_create_engine_makes_every_table_on_postgres(postgres_url: str) -> None:
    engine = store_engine.create_engine(postgres_url)
    try:
        assert engine.dialect.name == "postgresql"
        present = set(sa.inspect(engine).get_table_names())
        assert set(tables.metadata.tables) <= present
        # A second start on the same database finds everything there and changes nothing.
        store_engine.create_engine(postgres_url).dispose()
    finally:
        engine.dispose()


def test_processes_starting_at_once_on_a_fresh_database_all_start(postgres_url: str) -> None:
    # Two serving workers and the pipeline meeting an empty database: every CREATE TABLE raced
    # (pg_type UniqueViolation) and all but one process failed to start.
    starters = 4
    barrier = threading.Barrier(starters)
    errors: list[BaseException] = []

    def start() -> None:
        barrier.wait()
        try:
            store_engine.create_engine(postgres_url).dispose()
        except BaseException as exc:  # every failure is the finding
            errors.append(exc)

    threads = [threading.Thread(target=start) for _ in range(starters)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    engine = sa.create_engine(postgres_url)
    try:
        assert set(tables.metadata.tables) <= set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()


def test_writer_rows_are_read_back_by_the_pipeline_reader(postgres_url: str) -> None:
    engine = store_engine.create_engine(postgres_url)
    customer = MessageRecord(
        message_id="m-1",
        conversation_id="c-1",
        turn=0,
        ts=T0,
        speaker=Speaker.CUSTOMER,
        text="My card hasn't arrived — it's been two weeks 💳",
        user_id="u-1",
        channel="chat",
        context={"session": {"message_count": 0, "duration_s": 0.0}},
    )
    bot = MessageRecord(
        message_id="m-2",
        conversation_id="c-1",
        turn=1,
        ts=T0 + timedelta(seconds=2),
        speaker=Speaker.BOT,
        text="Cards arrive within 10 days.",
    )
    prediction = PredictionRecord(
        message_id="m-1",
        intent="card_arrival",
        confidence=0.91,
        fallback=False,
        model_name="intent-model",
        model_version="3",
        ts=T0 + timedelta(seconds=1),
        polarity=-0.2,
        subjectivity=0.4,
    )
    labels = [
        LabelRecord(  # an agent's label of the customer message
            text=customer.text,
            intent="card_delivery_estimate",
            label_source=LabelSource.AGENT,
            trust=LabelTrust.AGENT,
            ts=T0 + timedelta(minutes=5),
            message_id="m-1",
            predicted_intent="card_arrival",
            labelled_by="agent-7",
        ),
        LabelRecord(  # HTTP feedback about a text that is no stored message
            text="How do I top up by bank transfer?",
            intent="top_up_by_bank_transfer_charge",
            label_source=LabelSource.FEEDBACK,
            trust=LabelTrust.UNVERIFIED,
            ts=T0 + timedelta(minutes=6),
            session_id="s-9",
            is_new_intent=True,
        ),
    ]
    with engine.begin() as connection:
        insert_message(connection, customer)
        insert_message(connection, bot)
        insert_prediction(connection, prediction)
        label_id = insert_label(connection, labels[0])
        insert_label(connection, labels[1])
    with engine.connect() as connection:
        stored = connection.execute(sa.select(tables.predictions)).mappings().one()
    engine.dispose()
    assert label_id >= 1
    assert (stored["intent"], stored["fallback"], stored["model_version"]) == (
        "card_arrival",
        False,
        "3",
    )
    assert stored["confidence"] == 0.91 and stored["ts"] == prediction.ts

    frame = read_conversation_store(postgres_url).set_index("message_id")

    assert list(frame.index) == ["m-1", "m-2", f"label-{label_id + 1}"]
    first = frame.loc["m-1"]
    assert first["text"] == customer.text
    assert (first["intent"], first["label_source"], first["label_trust"]) == (
        "card_delivery_estimate",
        "agent",
        "agent",
    )
    assert datetime.fromisoformat(first["ts"]) == T0
    assert '"message_count": 0' in first["context"]
    assert first["source"].startswith("store:postgresql+psycopg://supportloop:***@")
    assert frame.loc["m-2", "speaker"] == "bot" and frame.loc["m-2", "label_source"] == "none"
    feedback = frame.loc[f"label-{label_id + 1}"]
    assert (feedback["channel"], feedback["conversation_id"], feedback["label_trust"]) == (
        "feedback",
        "s-9",
        "unverified",
    )


def make_old_labels_table(postgres_url: str) -> None:
    """A `labels` table as an older release made it: no `trust`, no `labelled_by`, a 64-character
    message_id, one row."""
    engine = sa.create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(
            sa.text(
                "CREATE TABLE labels (label_id SERIAL PRIMARY KEY, message_id VARCHAR(64),"
                " text TEXT NOT NULL, intent VARCHAR(128) NOT NULL,"
                " label_source VARCHAR(16) NOT NULL, predicted_intent VARCHAR(128),"
                " is_new_intent BOOLEAN NOT NULL DEFAULT false, user_id VARCHAR(128),"
                " session_id VARCHAR(128), ts TIMESTAMP WITH TIME ZONE NOT NULL)"
            )
        )
        connection.execute(
            sa.text(
                "INSERT INTO labels (text, intent, label_source, ts)"
                " VALUES ('old text', 'card_arrival', 'feedback', now())"
            )
        )
    engine.dispose()


def test_columns_added_since_a_store_was_made_are_added_on_postgres(postgres_url: str) -> None:
    make_old_labels_table(postgres_url)

    engine = store_engine.create_engine(postgres_url)
    columns = {column["name"]: column for column in sa.inspect(engine).get_columns("labels")}
    with engine.begin() as connection:
        old = connection.execute(sa.select(tables.labels)).mappings().one()
        insert_label(
            connection,
            LabelRecord(
                text="new text",
                intent="card_arrival",
                label_source=LabelSource.AGENT,
                trust=LabelTrust.AGENT,
                ts=T0,
                labelled_by="agent-1",
            ),
        )
    engine.dispose()

    assert isinstance(columns["trust"]["type"], sa.String) and not columns["trust"]["nullable"]
    assert isinstance(columns["labelled_by"]["type"], sa.String)
    assert (old["text"], old["trust"], old["labelled_by"]) == ("old text", "unverified", None)
    frame = read_conversation_store(postgres_url)
    assert sorted(frame["label_trust"]) == ["agent", "unverified"]


def test_columns_made_shorter_by_an_older_release_are_widened(postgres_url: str) -> None:
    # /feedback takes a message_id of up to 128 characters; the old column held 64 and
    # PostgreSQL refused the label (a 500) where SQLite silently stored it.
    make_old_labels_table(postgres_url)
    long_id = "m" * 128

    engine = store_engine.create_engine(postgres_url)
    with engine.begin() as connection:
        insert_label(
            connection,
            LabelRecord(
                text="Where is my card?",
                intent="card_arrival",
                label_source=LabelSource.FEEDBACK,
                trust=LabelTrust.SERVICE,
                ts=T0,
                message_id=long_id,
            ),
        )
    columns = {column["name"]: column for column in sa.inspect(engine).get_columns("labels")}
    with engine.connect() as connection:
        ids = connection.scalars(sa.select(tables.labels.c.message_id)).all()
    engine.dispose()

    assert columns["message_id"]["type"].length == 128
    assert ids.count(long_id) == 1 and len(ids) == 2


def test_a_prediction_batch_round_trips_on_postgres(postgres_url: str) -> None:
    # The prediction log's batch insert (SQLite takes a multi-row statement; PostgreSQL keeps
    # psycopg's executemany): NULLs, unicode, the hash mode and offsets other than UTC intact.
    rows = awkward_prediction_rows(515, nul=False)
    engine = store_engine.create_engine(postgres_url)
    with engine.begin() as connection:
        assert insert_prediction_rows(connection, rows) == 515
    columns = [c for c in tables.predictions.columns if not c.primary_key]
    with engine.connect() as connection:
        stored = connection.execute(
            sa.select(*columns).order_by(tables.predictions.c.prediction_id)
        ).mappings()
        assert [dict(row) for row in stored] == rows
    engine.dispose()

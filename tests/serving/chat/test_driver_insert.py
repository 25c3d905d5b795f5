"""serving/chat/statements.py DriverInsert: on SQLite a row goes straight to the driver, and it
must be the row SQLAlchemy would have written, and fail the way SQLAlchemy fails."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
import sqlalchemy as sa

from conversations import store_engine, tables
from conversations.schema import Speaker
from conversations.writer import (
    MessageRecord,
    PredictionRecord,
    insert_message,
    insert_prediction,
    message_row,
    prediction_row,
)
from serving.chat.auth import Identity, Role
from serving.chat.statements import (
    INSERT_CHAT_MESSAGE,
    INSERT_EVENT,
    INSERT_MESSAGE,
    INSERT_PREDICTION,
    LIVE_ROOM_MEMBERS,
    OPEN_REQUEST,
    REQUEST_STATUS,
    ROOM_REQUEST,
    TURN_AND_START,
    DriverInsert,
)
from serving.chat.store import ChatStore


def test_the_driver_writes_the_row_sqlalchemy_writes_and_raises_its_errors(tmp_path):
    engine = store_engine.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    ts = datetime(2026, 11, 30, 17, 5, 9, 123456, tzinfo=UTC)
    event = {"audience": "room:r1", "event_type": "new_message", "payload": "{}", "ts": ts}
    with engine.begin() as connection:
        usual = connection.execute(sa.insert(tables.events), event).inserted_primary_key[0]
        driven = INSERT_EVENT.execute(connection, event)
        message = {"message_id": "m1", "room_id": "r1", "sender_id": "ann", "seq": driven}
        INSERT_CHAT_MESSAGE.execute(connection, {**message, "client_msg_id": "c1"})
    assert driven == usual + 1
    with engine.connect() as connection:
        stored = connection.exec_driver_sql(
            "SELECT audience, event_type, payload, ts FROM chat_events"
        )
        first, second = stored.all()
        assert first == second and second.ts == "2026-11-30 17:05:09.123456"
        assert connection.scalar(sa.select(tables.events.c.ts).limit(1)) == ts.replace(tzinfo=None)
    with pytest.raises(sa.exc.IntegrityError), engine.begin() as connection:  # a resend's key
        INSERT_CHAT_MESSAGE.execute(
            connection, {**message, "message_id": "m2", "client_msg_id": "c1"}
        )
    with engine.connect() as connection:  # the failed transaction left nothing behind
        assert connection.scalar(sa.select(sa.func.count()).select_from(tables.chat_messages)) == 1


def test_columns_with_python_defaults_must_be_given():
    table = sa.Table(
        "t", sa.MetaData(), sa.Column("a", sa.Integer), sa.Column("b", sa.Integer, default=1)
    )
    with pytest.raises(ValueError, match="b"):
        DriverInsert(table, ("a",))


def test_a_driver_row_reads_what_sqlalchemy_reads(tmp_path):
    engine = store_engine.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    store = ChatStore(f"sqlite:///{tmp_path / 'store.db'}")
    for text in ("first", "second"):
        store.insert_message("r1", "ann", Speaker.CUSTOMER, text, None)
    with engine.connect() as connection:
        usual = connection.execute(TURN_AND_START.statement, {"room_id": "r1"}).one()
        driven = TURN_AND_START.first(connection, {"room_id": "r1"})
        missing = REQUEST_STATUS.first(connection, {"request_id": "none"})
    store.close()
    assert driven == tuple(usual) and driven[0] == 2 and isinstance(driven[1], datetime)
    assert missing is None


def test_message_and_prediction_rows_on_the_driver_are_the_writers_rows(tmp_path):
    engine = store_engine.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    ts = datetime(2026, 11, 30, 21, 5, 9, 123456, tzinfo=UTC)
    message = MessageRecord(
        message_id="usual",
        conversation_id="r1",
        turn=3,
        ts=ts,
        speaker=Speaker.CUSTOMER,
        text="ünïcode \x00 and 'quotes'",
        user_id="ann",
        channel="chat",
        context={"session": {"message_count": 3, "duration_s": 1.5}},
    )
    prediction = PredictionRecord(
        message_id="usual",
        intent="card_arrival",
        confidence=0.875,
        fallback=False,
        model_name="intent-classifier",
        model_version="7",
        ts=ts,
        polarity=-0.25,
        channel="chat",
    )
    with engine.begin() as connection:
        insert_message(connection, message)
        insert_prediction(connection, prediction)
        INSERT_MESSAGE.execute(connection, {**message_row(message), "message_id": "driven"})
        key = INSERT_PREDICTION.execute(
            connection, {**prediction_row(prediction), "message_id": "driven"}
        )
    assert key == 2  # the new row's prediction_id
    with engine.connect() as connection:
        messages = connection.exec_driver_sql("SELECT * FROM messages ORDER BY message_id").all()
        predictions = connection.exec_driver_sql(
            "SELECT * FROM predictions ORDER BY prediction_id"
        ).all()
    (driven, usual), (first, second) = messages, predictions
    assert driven[1:] == usual[1:]
    assert first[2:] == second[2:] and (first[:2], second[:2]) == ((1, "usual"), (2, "driven"))
    engine.dispose()


def test_room_and_request_reads_on_the_driver_are_sqlalchemys(tmp_path):
    store = ChatStore(f"sqlite:///{tmp_path / 'store.db'}")
    case, _ = store.support.open_conversation(Identity("ann", Role.CUSTOMER))
    store.rooms.add_member(case.room_id, Identity("agent-1", Role.AGENT))
    with store.engine.connect() as connection:
        for query, params in (
            (LIVE_ROOM_MEMBERS, {"room_id": case.room_id}),
            (OPEN_REQUEST, {"customer_id": "ann"}),
            (ROOM_REQUEST, {"room_id": case.room_id}),
            (OPEN_REQUEST, {"customer_id": "nobody"}),
        ):
            usual = [tuple(row) for row in connection.execute(query.statement, params)]
            assert query.all(connection, params) == usual
            assert query.first(connection, params) == (usual[0] if usual else None)
        room = store.rooms.room_in(connection, case.room_id)
    assert room is not None and room.member_ids[-1] == "agent-1" and len(room.member_ids) >= 2
    assert isinstance(room.created_at, datetime)
    assert store.support.latest_for_room(case.room_id) == case
    store.close()

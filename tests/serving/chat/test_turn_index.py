"""A chat message's turn count reads an index, not the room's rows, in new and older stores.

Every customer and bot message counts its room's messages and reads the first one's time
(serving/chat/statements.py TURN_AND_START); without `(conversation_id, ts)` SQLite read every row
of the room for the timestamp. A store made before the index gains it at start (store_engine.py), on
SQLite and on a real PostgreSQL server (tests/postgres.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from conversations import store_engine, tables
from serving.chat.statements import TURN_AND_START

INDEX = tables.messages_by_conversation_ts.name
T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)


def make_old_messages_table(url: str) -> None:
    """`messages` as the release before the index made it, with two rows of one room."""
    old = sa.MetaData()
    table = sa.Table("messages", old, *(c._copy() for c in tables.messages.columns))
    engine = sa.create_engine(url)
    old.create_all(engine)
    with engine.begin() as connection:
        for turn in range(2):
            connection.execute(
                sa.insert(table).values(
                    message_id=f"m-{turn}",
                    conversation_id="room-1",
                    turn=turn,
                    ts=T0.replace(minute=turn),
                    speaker="customer",
                    text="hello",
                )
            )
    engine.dispose()


def test_an_old_store_gains_the_index_and_counts_the_same(sqlite_or_postgres_url: str) -> None:
    make_old_messages_table(sqlite_or_postgres_url)
    assert INDEX not in {
        i["name"]
        for i in sa.inspect(sa.create_engine(sqlite_or_postgres_url)).get_indexes("messages")
    }

    engine = store_engine.create_engine(sqlite_or_postgres_url)
    assert INDEX in {i["name"] for i in sa.inspect(engine).get_indexes("messages")}
    with engine.connect() as connection:
        turn, first_ts = TURN_AND_START.first(connection, {"room_id": "room-1"}) or (None, None)
    assert turn == 2
    assert first_ts.replace(tzinfo=UTC) == T0
    engine.dispose()


def test_sqlite_counts_a_room_from_the_index_alone(tmp_path) -> None:
    engine = store_engine.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    sql = TURN_AND_START.statement.compile(dialect=engine.dialect).string
    with engine.connect() as connection:
        plan = connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {sql}", ("room-1",)).all()
    assert [row[-1] for row in plan] == [
        f"SEARCH messages USING COVERING INDEX {INDEX} (conversation_id=?)"
    ]
    engine.dispose()

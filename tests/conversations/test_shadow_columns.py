"""A store made before shadow scoring gains `predictions.role`, `.pair_id` and its index at start.

On SQLite and on a real PostgreSQL server (tests/postgres.py), the way every column added since a
store was made is added (conversations/store_engine.py): no row lost, old rows read as served.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from conversations import store_engine, tables
from conversations.schema import PredictionRole
from conversations.writer import PredictionRecord, insert_predictions

T0 = datetime(2026, 11, 30, 9, 0, tzinfo=UTC)
NEW_COLUMNS = ("role", "pair_id")


def make_old_predictions_table(url: str) -> None:
    """`predictions` as the release before shadow scoring made it, with one row."""
    old = sa.MetaData()
    columns = [c._copy() for c in tables.predictions.columns if c.name not in NEW_COLUMNS]
    table = sa.Table("predictions", old, *columns)
    engine = sa.create_engine(url)
    old.create_all(engine)
    with engine.begin() as connection:
        connection.execute(
            sa.insert(table).values(
                message_id="m-old",
                intent="card_arrival",
                confidence=0.9,
                fallback=False,
                model_name="intent-classifier",
                model_version="1",
                ts=T0,
                channel="http",
            )
        )
    engine.dispose()


def test_an_old_store_gains_the_pair_columns_and_index(sqlite_or_postgres_url: str) -> None:
    make_old_predictions_table(sqlite_or_postgres_url)

    engine = store_engine.create_engine(sqlite_or_postgres_url)
    pair = [
        PredictionRecord(
            message_id=f"http-{role}",
            intent=intent,
            confidence=0.5,
            fallback=False,
            model_name="intent-classifier",
            model_version=version,
            ts=T0,
            channel=channel,
            role=role,
            pair_id="p-1",
        )
        for role, intent, version, channel in (
            (PredictionRole.SERVED, "card_arrival", "1", "http"),
            (PredictionRole.SHADOW, "card_linking", "2", "shadow"),
        )
    ]
    with engine.begin() as connection:
        insert_predictions(connection, pair)
    inspector = sa.inspect(engine)
    columns = {column["name"] for column in inspector.get_columns("predictions")}
    indexed = {tuple(index["column_names"]) for index in inspector.get_indexes("predictions")}
    with engine.connect() as connection:
        found = connection.execute(
            sa.select(tables.predictions.c.message_id, tables.predictions.c.role)
            .where(
                sa.or_(
                    tables.predictions.c.pair_id == "p-1",
                    tables.predictions.c.message_id == "m-old",
                )
            )
            .order_by(tables.predictions.c.prediction_id)
        ).all()
    # A second start finds everything there and changes nothing.
    store_engine.create_engine(sqlite_or_postgres_url).dispose()
    engine.dispose()

    assert set(NEW_COLUMNS) <= columns
    assert ("pair_id",) in indexed
    assert [tuple(row) for row in found] == [
        ("m-old", None),
        ("http-served", "served"),
        ("http-shadow", "shadow"),
    ]

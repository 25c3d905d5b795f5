"""The chat store read as raw rows, by time range and in chunks, plus a per-day summary of it.

A time range selects `messages` by their indexed `ts`, each with its best label, and the labels
that name no stored message by their own `ts`. Rows stream from the database in chunks
(`CHUNK_ROWS`), so reading a day costs that day's rows, never the whole table.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from conversations import tables
from conversations.schema import TRUST_RANK, Speaker

CHUNK_ROWS = 5000


@dataclass(frozen=True)
class TimeRange:
    """`start <= ts < end`; an open end (None) reaches to the oldest or the newest row."""

    start: datetime | None = None
    end: datetime | None = None

    def where(self, column: sa.ColumnElement[Any]) -> list[sa.ColumnElement[bool]]:
        """The SQL conditions selecting `column` inside the range."""
        conditions = []
        if self.start is not None:
            conditions.append(column >= self.start)
        if self.end is not None:
            conditions.append(column < self.end)
        return conditions


def store_source(engine: sa.Engine) -> str:
    """The lineage name of a store: its URL with the password hidden."""
    return f"store:{engine.url.render_as_string(hide_password=True)}"


def iter_store_rows(engine: sa.Engine, window: TimeRange | None = None) -> Iterator[dict[str, Any]]:
    """Raw rows of the store's messages and unattached labels with `ts` inside `window`."""
    window = window or TimeRange()
    source = store_source(engine)
    messages, labels = tables.messages, tables.labels
    query = (
        sa.select(messages)
        .where(*window.where(messages.c.ts))
        .order_by(messages.c.ts, messages.c.message_id)
    )
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=CHUNK_ROWS).execute(query).mappings()
        for chunk in result.partitions():
            best = best_labels(connection, [row["message_id"] for row in chunk])
            for row in chunk:
                yield _message_row(source, row, best.get(row["message_id"]))
    unattached = (
        sa.select(labels)
        .where(
            *window.where(labels.c.ts),
            sa.or_(
                labels.c.message_id.is_(None),
                ~sa.exists().where(messages.c.message_id == labels.c.message_id),
            ),
        )
        .order_by(labels.c.ts, labels.c.label_id)
    )
    with engine.connect() as connection:
        result = connection.execution_options(yield_per=CHUNK_ROWS).execute(unattached).mappings()
        for chunk in result.partitions():
            yield from (_label_row(source, row) for row in chunk)


def best_labels(connection: sa.Connection, message_ids: Sequence[str]) -> dict[str, Any]:
    """Per message, the most trusted label, the newest among equals."""
    labels = tables.labels
    rows = connection.execute(
        sa.select(labels)
        .where(labels.c.message_id.in_(message_ids))
        .order_by(labels.c.ts, labels.c.label_id)
    ).mappings()
    best: dict[str, Any] = {}
    # Oldest first, so a later label of equal trust replaces the one held.
    for row in rows:
        held = best.get(row["message_id"])
        if held is None or TRUST_RANK.get(row["trust"], -1) >= TRUST_RANK.get(held["trust"], -1):
            best[row["message_id"]] = row
    return best


def _message_row(source: str, row: Any, label: Any) -> dict[str, Any]:
    return {
        **dict(row),
        "source": f"{source}/messages",
        "source_line": row["message_id"],
        "intent": label["intent"] if label else row["intent"],
        "label_source": label["label_source"] if label else row["label_source"],
        "label_trust": label["trust"] if label else None,
        "ts": iso_utc(row["ts"]),
        "read_error": None,
    }


def _label_row(source: str, row: Any) -> dict[str, Any]:
    # A label naming no stored message is a single-message conversation of its own.
    message_id = f"label-{row['label_id']}"
    return {
        "source": f"{source}/labels",
        "source_line": row["label_id"],
        "message_id": message_id,
        "conversation_id": row["session_id"] or message_id,
        "turn": 0,
        "ts": iso_utc(row["ts"]),
        "speaker": Speaker.CUSTOMER.value,
        "user_id": row["user_id"],
        "channel": "feedback",
        "text": row["text"],
        "intent": row["intent"],
        "label_source": row["label_source"],
        "label_trust": row["trust"],
        "context": None,
        "read_error": None,
    }


def iso_utc(value: Any) -> str | None:
    """A stored timestamp as ISO-8601 text; naive values (SQLite) are UTC."""
    if value is None:
        return None
    if getattr(value, "tzinfo", None) is None:
        return f"{value.isoformat()}+00:00"
    return str(value.isoformat())


def day_summary(engine: sa.Engine) -> dict[str, str]:
    """Per UTC day (`YYYY-MM-DD`), a summary that changes when that day's rows change.

    A day's rows are its messages (with their labels: a new label on an old message changes the
    old message's day) and the unattached labels written that day. The aggregates run in the
    database over the `ts` and `message_id` indexes.
    """
    messages, labels = tables.messages, tables.labels
    message_day = _day(engine, messages.c.ts)
    label_day = _day(engine, labels.c.ts)
    parts: dict[str, list[str]] = {}
    queries = {
        "m": sa.select(message_day, sa.func.count(), sa.func.max(messages.c.ts)).group_by(
            message_day
        ),
        "l": sa.select(message_day, sa.func.count(), sa.func.max(labels.c.label_id))
        .join_from(labels, messages, labels.c.message_id == messages.c.message_id)
        .group_by(message_day),
        "u": sa.select(label_day, sa.func.count(), sa.func.max(labels.c.label_id))
        .where(
            sa.or_(
                labels.c.message_id.is_(None),
                ~sa.exists().where(messages.c.message_id == labels.c.message_id),
            )
        )
        .group_by(label_day),
    }
    with engine.connect() as connection:
        for name, query in queries.items():
            for day, count, newest in connection.execute(query):
                parts.setdefault(str(day), []).append(f"{name}:{count}:{newest}")
    return {day: ";".join(sorted(items)) for day, items in parts.items()}


def _day(engine: sa.Engine, column: sa.Column[Any]) -> sa.ColumnElement[Any]:
    """The UTC calendar day of a timestamp column, as `YYYY-MM-DD` text."""
    if engine.dialect.name == "postgresql":
        return sa.func.to_char(sa.func.timezone("UTC", column), "YYYY-MM-DD")
    # SQLite keeps the UTC wall time as text (`YYYY-MM-DD HH:MM:SS.ffffff`).
    return sa.func.substr(column, 1, 10)

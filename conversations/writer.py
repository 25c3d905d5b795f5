"""The one writer of the `messages`, `predictions` and `labels` tables.

The chat tier, HTTP feedback, the monitoring replay and the drift demo all write conversations
through these functions, so the rows the training loop reads have one shape and one set of rules:
a speaker is a `Speaker`, a label carries its `LabelSource` and `LabelTrust` (who gave it decides
where it may be used, data/README.md), a message's context is stored as JSON.

Each function takes an open SQLAlchemy connection and writes inside the caller's transaction:
the chat tier commits a message together with its event and acknowledges only after the commit.
"""

from __future__ import annotations

import functools
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypedDict

import sqlalchemy as sa

from conversations import tables
from conversations.schema import LabelSource, LabelTrust, PredictionRole, Speaker


@dataclass(frozen=True)
class MessageRecord:
    """One row of `messages`: a turn of a conversation, unlabelled unless `intent` is given."""

    message_id: str
    conversation_id: str
    turn: int
    ts: datetime
    speaker: Speaker
    text: str
    user_id: str | None = None
    channel: str | None = None
    context: Mapping[str, Any] | None = None
    intent: str | None = None
    label_source: LabelSource = LabelSource.NONE

    def __post_init__(self) -> None:
        # Enum construction refuses an unknown value here, before anything reaches the store.
        object.__setattr__(self, "speaker", Speaker(self.speaker))
        object.__setattr__(self, "label_source", LabelSource(self.label_source))


@dataclass(frozen=True)
class PredictionRecord:
    """One row of `predictions`: what a model version said about a message."""

    message_id: str
    intent: str
    confidence: float
    fallback: bool
    model_name: str
    model_version: str
    ts: datetime
    polarity: float | None = None
    subjectivity: float | None = None
    channel: str | None = None
    latency_ms: float | None = None
    text: str | None = None
    text_sha256: str | None = None
    user_id: str | None = None
    session_id: str | None = None
    # Shadow scoring: None on rows that are not part of a pair (the chat tier's).
    role: PredictionRole | None = None
    pair_id: str | None = None

    def __post_init__(self) -> None:
        if self.role is not None:
            object.__setattr__(self, "role", PredictionRole(self.role))


@dataclass(frozen=True)
class LabelRecord:
    """One row of `labels`: a true intent given after the fact, with who gave it and its trust.

    `trust` has no default: every writer states the trust of the credential behind the label.
    """

    text: str
    intent: str
    label_source: LabelSource
    trust: LabelTrust
    ts: datetime
    message_id: str | None = None
    predicted_intent: str | None = None
    is_new_intent: bool = False
    user_id: str | None = None
    session_id: str | None = None
    labelled_by: str | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "label_source", LabelSource(self.label_source))
        object.__setattr__(self, "trust", LabelTrust(self.trust))


_INSERT_MESSAGE = sa.insert(tables.messages)
_INSERT_PREDICTION = sa.insert(tables.predictions)


def insert_message(connection: sa.Connection, message: MessageRecord) -> None:
    """Write one message row."""
    # Parameters, not `.values(...)`: SQLAlchemy then builds no statement per row (~6x less CPU
    # per chat message, bench/README.md); the row is the same.
    connection.execute(_INSERT_MESSAGE, message_row(message))


def message_row(message: MessageRecord) -> dict[str, Any]:
    """The `messages` row `insert_message` writes, as statement parameters (the chat tier runs
    them on SQLite's driver connection: serving/chat/statements.py)."""
    return {
        "message_id": message.message_id,
        "conversation_id": message.conversation_id,
        "turn": message.turn,
        "ts": message.ts,
        "speaker": message.speaker.value,
        "user_id": message.user_id,
        "channel": message.channel,
        "text": message.text,
        "intent": message.intent,
        "label_source": message.label_source.value,
        "context": json.dumps(message.context) if message.context is not None else None,
    }


def insert_prediction(connection: sa.Connection, prediction: PredictionRecord) -> None:
    """Write one prediction row."""
    connection.execute(_INSERT_PREDICTION, _prediction_row(prediction))


def prediction_row(prediction: PredictionRecord) -> PredictionRow:
    """The `predictions` row `insert_prediction` writes, as statement parameters."""
    return _prediction_row(prediction)


class PredictionRow(TypedDict):
    """A `predictions` row as the driver takes it: for writers of many rows a second, where a
    `PredictionRecord` per row (a frozen dataclass, its role re-validated) costs more than
    SQLite's insert (the prediction log, serving/prediction_log.py)."""

    message_id: str
    intent: str
    confidence: float
    fallback: bool
    model_name: str
    model_version: str
    polarity: float | None
    subjectivity: float | None
    ts: datetime
    channel: str | None
    latency_ms: float | None
    text: str | None
    text_sha256: str | None
    user_id: str | None
    session_id: str | None
    role: str | None
    pair_id: str | None


def insert_predictions(connection: sa.Connection, predictions: Sequence[PredictionRecord]) -> int:
    """Write many prediction rows in one statement; returns how many."""
    return insert_prediction_rows(connection, [_prediction_row(record) for record in predictions])


def insert_prediction_rows(connection: sa.Connection, rows: Sequence[PredictionRow]) -> int:
    """Write many `predictions` rows already in the driver's shape; returns how many.

    On SQLite, a multi-row `INSERT ... VALUES (...), (...)` a chunk rather than `executemany`:
    sqlite3 hands the GIL back and forth once per row of an `executemany`, and in a served worker
    every hand-off waits for the event loop (~240 us a row instead of 25, bench/README.md "Cost of
    the prediction log"); one statement a chunk is one hand-off. PostgreSQL keeps psycopg's
    `executemany` (pipelined). The rows stored are the same either way.
    """
    if not rows:
        return 0
    if connection.dialect.name == "sqlite" and connection.dialect.paramstyle == "qmark":
        _insert_prediction_chunks(connection, rows)
    else:
        connection.execute(_INSERT_PREDICTION, rows)
    return len(rows)


_PREDICTION_COLUMNS = tuple(c.name for c in tables.predictions.columns if not c.primary_key)
# At most 512 rows a statement (8,704 bound parameters; SQLite allows 32,766), in multiples of
# 64 rows and then the rest: a batch of up to 512 rows is at most two statements, and a
# connection's statement cache (128) holds every shape (8 multiples + 63 rests, ~5 MB; a
# prepared 512-row statement is ~0.6 MB, so one shape per batch size would be too many).
_MAX_CHUNK_ROWS = 512
_CHUNK_STEP_ROWS = 64


def _insert_prediction_chunks(connection: sa.Connection, rows: Sequence[PredictionRow]) -> None:
    dialect = connection.dialect
    # The values as SQLAlchemy's own statement would bind them (datetime text, booleans as 0/1).
    processors = []
    for position, name in enumerate(_PREDICTION_COLUMNS):
        column_type = tables.predictions.c[name].type.dialect_impl(dialect)
        if (processor := column_type.bind_processor(dialect)) is not None:
            processors.append((position, processor))
    width = len(_PREDICTION_COLUMNS)
    values: list[object] = []
    for row in rows:
        fields: Mapping[str, object] = row  # a TypedDict read by a computed key
        bound = [fields[name] for name in _PREDICTION_COLUMNS]
        for position, processor in processors:
            bound[position] = processor(bound[position])
        values.extend(bound)
    start = 0
    while start < len(rows):
        size = _chunk_rows(len(rows) - start)
        connection.exec_driver_sql(
            _multi_row_insert(size), tuple(values[start * width : (start + size) * width])
        )
        start += size


def _chunk_rows(left: int) -> int:
    if left >= _MAX_CHUNK_ROWS:
        return _MAX_CHUNK_ROWS
    return left - left % _CHUNK_STEP_ROWS or left


@functools.cache
def _multi_row_insert(size: int) -> str:
    placeholders = "(" + ", ".join("?" * len(_PREDICTION_COLUMNS)) + ")"
    return (
        f"INSERT INTO {tables.predictions.name} ({', '.join(_PREDICTION_COLUMNS)}) "
        f"VALUES {', '.join([placeholders] * size)}"
    )


def _prediction_row(prediction: PredictionRecord) -> PredictionRow:
    return {
        "message_id": prediction.message_id,
        "intent": prediction.intent,
        "confidence": float(prediction.confidence),
        "fallback": bool(prediction.fallback),
        "model_name": prediction.model_name,
        "model_version": prediction.model_version,
        "polarity": prediction.polarity,
        "subjectivity": prediction.subjectivity,
        "ts": prediction.ts,
        "channel": prediction.channel,
        "latency_ms": prediction.latency_ms,
        "text": prediction.text,
        "text_sha256": prediction.text_sha256,
        "user_id": prediction.user_id,
        "session_id": prediction.session_id,
        "role": prediction.role.value if prediction.role is not None else None,
        "pair_id": prediction.pair_id,
    }


def insert_label(connection: sa.Connection, label: LabelRecord) -> int:
    """Write one label row; returns its label id."""
    result = connection.execute(sa.insert(tables.labels).values(_label_row(label)))
    key = result.inserted_primary_key
    assert key is not None  # a single-row insert always reports its key
    return int(key[0])


def insert_labels(connection: sa.Connection, labels: Sequence[LabelRecord]) -> int:
    """Write many label rows in one statement; returns how many."""
    if labels:
        connection.execute(sa.insert(tables.labels), [_label_row(label) for label in labels])
    return len(labels)


def _label_row(label: LabelRecord) -> dict[str, Any]:
    return {
        "message_id": label.message_id,
        "text": label.text,
        "intent": label.intent,
        "label_source": label.label_source.value,
        "predicted_intent": label.predicted_intent,
        "is_new_intent": label.is_new_intent,
        "user_id": label.user_id,
        "session_id": label.session_id,
        "ts": label.ts,
        "trust": label.trust.value,
        "labelled_by": label.labelled_by,
    }

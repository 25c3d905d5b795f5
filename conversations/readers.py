"""Readers that turn each source into raw rows of the canonical schema, with lineage.

Readers never drop a row: a row they cannot decode keeps its line number and a `read_error`,
and validation quarantines it. A file that lacks a required column fails as a whole.
"""

from __future__ import annotations

import csv
import hashlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa

from conversations import tables
from conversations.schema import LABEL_REQUIRED_COLUMN, RAW_COLUMNS, LabelSource, Speaker

TEXT_COLUMNS = ("text", "user_message")
LABEL_COLUMNS = ("category", "intent")


class SourceSchemaError(ValueError):
    """A source file lacks a column every row needs; the whole file is rejected."""


def _has_undecodable_bytes(value: str) -> bool:
    # Files are decoded with errors="surrogateescape": invalid UTF-8 shows up as lone surrogates.
    return any("\udc80" <= ch <= "\udcff" for ch in value)


def _row_id(source: str, line: int) -> str:
    return hashlib.sha1(f"{source}:{line}".encode()).hexdigest()[:20]


def _as_text(value: Any) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    # Undecodable bytes become U+FFFD for storage; the row already carries its read_error.
    return str(value).encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def _raw_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Raw rows as text columns (plus the boolean label flag), the same for every source."""
    frame = pd.DataFrame(rows, columns=list(RAW_COLUMNS))
    for column in RAW_COLUMNS:
        if column == LABEL_REQUIRED_COLUMN:
            frame[column] = frame[column].fillna(False).astype(bool)
        else:
            frame[column] = pd.Series([_as_text(v) for v in frame[column]], dtype=object)
    return frame


def read_labelled_csv(path: Path, source_name: str | None = None) -> pd.DataFrame:
    """Read a labelled utterance CSV (`text,category` or `user_message,intent[,context]`).

    Each row becomes a single-message conversation spoken by a customer with a seed label.
    """
    source = source_name or path.name
    with path.open(encoding="utf-8", errors="surrogateescape", newline="") as handle:
        reader = csv.reader(handle)
        header = [name.strip().lstrip("\ufeff") for name in next(reader, [])]
        text_column = next((c for c in TEXT_COLUMNS if c in header), None)
        if text_column is None:
            raise SourceSchemaError(
                f"{path}: no text column (expected one of {', '.join(TEXT_COLUMNS)}; "
                f"found {', '.join(header) or 'nothing'})"
            )
        label_column = next((c for c in LABEL_COLUMNS if c in header), None)
        index = {name: position for position, name in enumerate(header)}
        rows = [
            _csv_row(source, reader.line_num, values, index, text_column, label_column)
            for values in reader
            if values  # a blank line is not a row
        ]
    return _raw_frame(rows)


def _csv_row(
    source: str,
    line: int,
    values: list[str],
    index: dict[str, int],
    text_column: str,
    label_column: str | None,
) -> dict[str, Any]:
    def field(name: str | None) -> str | None:
        if name is None or name not in index or index[name] >= len(values):
            return None
        return values[index[name]]

    read_error = "invalid UTF-8" if any(_has_undecodable_bytes(v) for v in values) else None
    message_id = field("message_id") or _row_id(source, line)
    return {
        "source": source,
        "source_line": line,
        "message_id": message_id,
        "conversation_id": field("conversation_id") or message_id,
        "turn": 0,
        "ts": field("ts"),
        "speaker": Speaker.CUSTOMER.value,
        "user_id": field("user_id"),
        "channel": field("channel") or "import",
        "text": field(text_column),
        "intent": field(label_column) or None,
        "label_source": LabelSource.SEED.value,
        "context": field("context") or None,
        "read_error": read_error,
        "label_required": True,
    }


def read_conversation_jsonl(path: Path, source_name: str | None = None) -> pd.DataFrame:
    """Read a conversation JSONL file: one JSON object per line in the canonical schema."""
    source = source_name or path.name
    rows = list(_jsonl_rows(path, source))
    return _raw_frame(rows)


def _jsonl_rows(path: Path, source: str) -> Iterator[dict[str, Any]]:
    with path.open("rb") as handle:
        for line_number, raw in enumerate(handle, start=1):
            if not raw.strip():
                continue
            row: dict[str, Any] = {"source": source, "source_line": line_number}
            try:
                record = json.loads(raw.decode("utf-8"))
            except UnicodeDecodeError:
                yield {**row, "read_error": "invalid UTF-8"}
                continue
            except json.JSONDecodeError as error:
                yield {**row, "read_error": f"unparseable JSON: {error.msg}"}
                continue
            if not isinstance(record, dict):
                yield {**row, "read_error": "line is not a JSON object"}
                continue
            context = record.get("context")
            yield {
                **row,
                "message_id": record.get("message_id") or _row_id(source, line_number),
                "conversation_id": record.get("conversation_id"),
                "turn": record.get("turn"),
                "ts": record.get("ts"),
                "speaker": record.get("speaker"),
                "user_id": record.get("user_id"),
                "channel": record.get("channel"),
                "text": record.get("text"),
                "intent": record.get("intent"),
                "label_source": record.get("label_source"),
                # Keep objects as JSON text so validation parses every source the same way.
                "context": json.dumps(context) if isinstance(context, dict) else context,
                "read_error": None,
            }


def read_conversation_store(url: str) -> pd.DataFrame:
    """Read the chat tier's SQL store: messages with their latest label, plus free-text feedback."""
    engine = tables.create_engine(url)
    source = f"store:{engine.url.render_as_string(hide_password=True)}"
    with engine.connect() as connection:
        message_rows = (
            connection.execute(
                sa.select(tables.messages).order_by(
                    tables.messages.c.ts, tables.messages.c.message_id
                )
            )
            .mappings()
            .all()
        )
        label_rows = (
            connection.execute(
                sa.select(tables.labels).order_by(tables.labels.c.ts, tables.labels.c.label_id)
            )
            .mappings()
            .all()
        )
    engine.dispose()
    latest_label = {row["message_id"]: row for row in label_rows if row["message_id"]}
    known_ids = {row["message_id"] for row in message_rows}
    rows: list[dict[str, Any]] = []
    for row in message_rows:
        label = latest_label.get(row["message_id"])
        rows.append(
            {
                **dict(row),
                "source": f"{source}/messages",
                "source_line": row["message_id"],
                "intent": label["intent"] if label else row["intent"],
                "label_source": label["label_source"] if label else row["label_source"],
                "ts": _iso(row["ts"]),
                "read_error": None,
            }
        )
    for row in label_rows:
        if row["message_id"] in known_ids:
            continue
        message_id = f"label-{row['label_id']}"
        rows.append(
            {
                "source": f"{source}/labels",
                "source_line": row["label_id"],
                "message_id": message_id,
                "conversation_id": row["session_id"] or message_id,
                "turn": 0,
                "ts": _iso(row["ts"]),
                "speaker": Speaker.CUSTOMER.value,
                "user_id": row["user_id"],
                "channel": "feedback",
                "text": row["text"],
                "intent": row["intent"],
                "label_source": row["label_source"],
                "context": None,
                "read_error": None,
            }
        )
    return _raw_frame(rows)


def _iso(value: Any) -> str | None:
    if value is None:
        return None
    if getattr(value, "tzinfo", None) is None:
        return f"{value.isoformat()}+00:00"
    return value.isoformat()

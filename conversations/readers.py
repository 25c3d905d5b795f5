"""Readers that turn each source into raw rows of the canonical schema, with lineage.

Readers never drop a row: a row they cannot decode keeps its line number, a `read_error_code`
(`ReadProblem`) and a `read_error` message, and validation quarantines it. A file that lacks a
required column fails as a whole, naming the file. Blank lines are not rows.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd

from conversations import store_engine
from conversations.csv_records import CsvRecord, read_records
from conversations.jsonl_fields import LineProblem, parse_line
from conversations.lines import LineReader, Piece
from conversations.raw_rows import as_text, has_undecodable_bytes, problem_row, raw_frame, row_id
from conversations.schema import (
    LabelSource,
    ReadProblem,
    Speaker,
)
from conversations.store_reader import iter_store_rows

logger = logging.getLogger(__name__)

TEXT_COLUMNS = ("text", "user_message")
LABEL_COLUMNS = ("category", "intent")


class SourceSchemaError(ValueError):
    """A source file lacks a column every row needs; the whole file is rejected."""


def read_labelled_csv(path: Path, source_name: str | None = None) -> pd.DataFrame:
    """Read a labelled utterance CSV (`text,category` or `user_message,intent[,context]`).

    Each row becomes a single-message conversation spoken by a customer with a seed label.
    Its `source_line` is the line the row starts on.
    """
    source = source_name or path.name
    handle, lines = LineReader.open(path)
    with handle:
        records = read_records(lines)
        header = _header(path, next(records, None))
        text_column = next((c for c in TEXT_COLUMNS if c in header), None)
        if text_column is None:
            found = ", ".join(header[:20]) + (", …" if len(header) > 20 else "")
            raise SourceSchemaError(
                f"{path}: no text column (expected one of {', '.join(TEXT_COLUMNS)}; "
                f"found {found or 'nothing'})"
            )
        layout = _CsvLayout(
            width=len(header),
            positions={name: position for position, name in enumerate(header)},
            text_column=text_column,
            label_column=next((c for c in LABEL_COLUMNS if c in header), None),
        )
        rows = [_csv_row(source, record, layout) for record in records]
    if not rows:
        logger.warning("%s: header only, no rows", path)
    return raw_frame(rows)


def _header(path: Path, record: CsvRecord | None) -> list[str]:
    if record is None:
        raise SourceSchemaError(f"{path}: empty file (no header line)")
    if record.problem is not None:
        raise SourceSchemaError(f"{path}:{record.first_line}: bad header: {record.detail}")
    header = [as_text(name.strip()) or "" for name in record.fields]
    duplicates = sorted({name for name in header if name and header.count(name) > 1})
    if duplicates:
        raise SourceSchemaError(f"{path}:{record.first_line}: duplicate columns {duplicates}")
    return header


@dataclass(frozen=True)
class _CsvLayout:
    """The columns of a labelled CSV, from its header."""

    width: int
    positions: dict[str, int]
    text_column: str
    label_column: str | None

    def value(self, values: list[str], name: str | None) -> str | None:
        """The value of column `name` in a row, None when the column or the value is absent."""
        position = self.positions.get(name) if name is not None else None
        if position is None or position >= len(values):
            return None
        return values[position]


def _csv_row(source: str, record: CsvRecord, layout: _CsvLayout) -> dict[str, Any]:
    line, values = record.first_line, record.fields
    if record.problem is ReadProblem.UNCLOSED_QUOTE:
        message = f"{record.detail}; reading resumed on line {line + 1}"
        return problem_row(source, line, record.problem, message, record.preview)
    if record.problem is not None:
        return problem_row(source, line, record.problem, record.detail, record.preview)
    width = layout.width
    # Empty trailing values (a spreadsheet's padding) lose nothing; any other extra value would.
    if any(values[width:]):
        return problem_row(
            source,
            line,
            ReadProblem.TOO_MANY_COLUMNS,
            f"{len(values)} values for {width} columns (an unquoted delimiter in a value?)",
            ",".join(values)[:200],
        )

    def field(name: str | None) -> str | None:
        return layout.value(values, name)

    invalid = any(has_undecodable_bytes(v) for v in values)
    message_id = field("message_id") or row_id(source, line)
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
        "text": field(layout.text_column),
        "intent": field(layout.label_column) or None,
        "label_source": LabelSource.SEED.value,
        "context": field("context") or None,
        "read_error_code": ReadProblem.INVALID_UTF8.value if invalid else None,
        "read_error": "invalid UTF-8" if invalid else None,
        "label_required": True,
    }


def read_conversation_jsonl(path: Path, source_name: str | None = None) -> pd.DataFrame:
    """Read a conversation JSONL file: one JSON object per line in the canonical schema."""
    return raw_frame(list(iter_conversation_jsonl(path, source_name)))


def iter_conversation_jsonl(path: Path, source_name: str | None = None) -> Iterator[dict[str, Any]]:
    """The raw rows of a conversation JSONL file one at a time (memory: one line at most)."""
    source = source_name or path.name
    handle, lines = LineReader.open(path)
    with handle:
        yield from _jsonl_rows(lines, source)


def _jsonl_rows(lines: LineReader, source: str) -> Iterator[dict[str, Any]]:
    while (piece := lines.read()) is not None:
        if piece.ends_line and not piece.text.strip():
            continue
        yield _jsonl_row(lines, piece, source)


def _jsonl_row(lines: LineReader, piece: Piece, source: str) -> dict[str, Any]:
    line, text = piece.line, piece.text
    if not piece.ends_line:
        lines.skip_rest_of_line(piece)
        message = f"line {line} is longer than {lines.max_chars} characters"
        return problem_row(source, line, ReadProblem.ROW_TOO_LARGE, message, text[:200])
    if has_undecodable_bytes(text):
        return problem_row(source, line, ReadProblem.INVALID_UTF8, "invalid UTF-8", text[:200])
    parsed = parse_line(text)
    if isinstance(parsed, LineProblem):
        return problem_row(source, line, parsed.code, parsed.message, text.strip()[:200])
    context = parsed.get("context")
    return {
        "source": source,
        "source_line": line,
        "message_id": parsed.get("message_id") or row_id(source, line),
        "conversation_id": parsed.get("conversation_id"),
        "turn": parsed.get("turn"),
        "ts": parsed.get("ts"),
        "speaker": parsed.get("speaker"),
        "user_id": parsed.get("user_id"),
        "channel": parsed.get("channel"),
        "text": parsed.get("text"),
        "intent": parsed.get("intent"),
        "label_source": parsed.get("label_source"),
        "label_trust": parsed.get("label_trust"),
        # Keep objects as JSON text so validation parses every source the same way.
        "context": json.dumps(context) if context is not None else None,
        "read_error_code": None,
        "read_error": None,
    }


def read_conversation_store(url: str) -> pd.DataFrame:
    """Read the chat tier's SQL store: messages with their best label, plus free-text feedback."""
    engine = store_engine.create_engine(url)
    try:
        return raw_frame(list(iter_store_rows(engine)))
    finally:
        engine.dispose()

"""Raw rows as every reader hands them to validation: text columns with lineage."""

from __future__ import annotations

import hashlib
import re
from typing import Any

import pandas as pd

from conversations.schema import LABEL_REQUIRED_COLUMN, RAW_COLUMNS, ReadProblem

UNDECODABLE = re.compile("[\udc80-\udcff]")


def has_undecodable_bytes(value: str) -> bool:
    """Whether `value` holds bytes that were not UTF-8."""
    # Files are decoded with errors="surrogateescape": invalid UTF-8 shows up as lone surrogates.
    return UNDECODABLE.search(value) is not None


def row_id(source: str, line: int) -> str:
    """A stable message id for a row that has none: a hash of where it was read."""
    return hashlib.sha1(f"{source}:{line}".encode()).hexdigest()[:20]


def as_text(value: Any) -> str | None:
    """A raw value as storable text (None for missing values)."""
    if value is None or (isinstance(value, float) and value != value):
        return None
    # Undecodable bytes become U+FFFD for storage; the row already carries its read_error.
    return str(value).encode("utf-8", errors="surrogateescape").decode("utf-8", errors="replace")


def raw_frame(rows: list[dict[str, Any]]) -> pd.DataFrame:
    """Raw rows as text columns (plus the boolean label flag), the same for every source."""
    frame = pd.DataFrame(rows, columns=list(RAW_COLUMNS))
    for column in RAW_COLUMNS:
        if column == LABEL_REQUIRED_COLUMN:
            frame[column] = frame[column].eq(True)
        else:
            frame[column] = pd.Series([as_text(v) for v in frame[column]], dtype=object)
    return frame


def problem_row(
    source: str, line: int, code: ReadProblem, message: str, preview: str
) -> dict[str, Any]:
    """A row that could not be read: lineage, the raw text for people, and why."""
    return {
        "source": source,
        "source_line": line,
        "message_id": row_id(source, line),
        "text": preview,
        "read_error_code": code.value,
        "read_error": message,
    }

"""One conversation JSONL line: parsed strictly, every field checked against the schema's type.

A value of the wrong JSON type is never coerced (the number 5 is not the label "5", an object is
not a text); the line is quarantined as `wrong_type`, naming the field.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from conversations.schema import MESSAGE_COLUMNS, ReadProblem

# Every message column is a JSON string except `turn` (an integer) and `context` (an object):
# derived from the schema, so a new column is type-checked without a second list to update.
STRING_FIELDS: tuple[str, ...] = tuple(
    column for column in MESSAGE_COLUMNS if column not in ("turn", "context")
)
MAX_TURN = 2**31 - 1  # far beyond any conversation, and safe in every integer column
LONE_SURROGATE = re.compile("[\ud800-\udfff]")
_SURROGATE_ESCAPE = re.compile(r"\\u[dD][89a-fA-F]")


@dataclass(frozen=True, slots=True)
class LineProblem:
    """Why a JSONL line is not a usable message: a reason code and a message for people."""

    code: ReadProblem
    message: str


def _reject_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def _finite_float(literal: str) -> float:
    value = float(literal)
    if not math.isfinite(value):
        raise ValueError(f"number {literal[:40]} is out of range")
    return value


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    # Python keeps the last of two equal keys silently; which one the writer meant is unknown.
    record = dict(pairs)
    if len(record) != len(pairs):
        raise ValueError(f"duplicate key {_first_repeat(key for key, _ in pairs)!r}")
    return record


def _first_repeat(keys: Iterable[str]) -> str | None:
    seen: set[str] = set()
    for key in keys:
        if key in seen:
            return key
        seen.add(key)
    return None


def _json_type(value: Any) -> str:
    names = {bool: "a boolean", str: "a string", list: "an array", dict: "an object"}
    if value is None:
        return "null"
    if isinstance(value, int | float) and not isinstance(value, bool):
        return "a number"
    return names.get(type(value), type(value).__name__)


def _describe(value: Any) -> str:
    shown = json.dumps(value)
    return f"{_json_type(value)} ({shown if len(shown) <= 60 else shown[:60] + '…'})"


def parse_line(text: str) -> dict[str, Any] | LineProblem:
    """The JSON object on `text`, or why it is not one of the documented shape."""
    try:
        record = json.loads(
            text,
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            object_pairs_hook=_unique_keys,
        )
    except RecursionError:
        return LineProblem(ReadProblem.UNPARSEABLE_LINE, "unparseable JSON: nested too deeply")
    except json.JSONDecodeError as error:
        return LineProblem(
            ReadProblem.UNPARSEABLE_LINE, f"unparseable JSON: {error.msg} (column {error.colno})"
        )
    except ValueError as error:  # the hooks above, or an integer too long to convert
        return LineProblem(ReadProblem.UNPARSEABLE_LINE, f"unparseable JSON: {str(error)[:120]}")
    if not isinstance(record, dict):
        return LineProblem(
            ReadProblem.UNPARSEABLE_LINE, f"line is {_json_type(record)}, not a JSON object"
        )
    return _surrogate_problem(text, record) or field_problem(record) or record


def _surrogate_problem(text: str, record: dict[str, Any]) -> LineProblem | None:
    r"""A `\ud800` escape alone: `json.loads` makes it half a character, which no UTF-8 stores.

    Escapes of a pair (an emoji written ASCII-only) decode to one character and pass; only lines
    with a surrogate escape at all are searched, so ordinary lines cost one regex scan.
    """
    if not _SURROGATE_ESCAPE.search(text):
        return None
    for key, value in record.items():
        where = "a key" if LONE_SURROGATE.search(key) else None
        if where is None and LONE_SURROGATE.search(json.dumps(value, ensure_ascii=False)):
            where = key
        if where is not None:
            return LineProblem(
                ReadProblem.UNPARSEABLE_LINE,
                f"unparseable JSON: {where[:40]} holds a lone surrogate escape (half a character)",
            )
    return None


def field_problem(record: dict[str, Any]) -> LineProblem | None:
    """The first field whose JSON type (or range) the schema does not allow; null is allowed."""
    for name in STRING_FIELDS:
        value = record.get(name)
        if value is not None and not isinstance(value, str):
            return LineProblem(
                ReadProblem.WRONG_TYPE, f"{name} must be a string, got {_describe(value)}"
            )
    turn = record.get("turn")
    if turn is not None and (isinstance(turn, bool) or not isinstance(turn, int)):
        return LineProblem(
            ReadProblem.WRONG_TYPE, f"turn must be an integer, got {_describe(turn)}"
        )
    if turn is not None and not 0 <= turn <= MAX_TURN:
        return LineProblem(
            ReadProblem.TURN_OUT_OF_RANGE,
            f"turn must be from 0 to {MAX_TURN}, got {_describe(turn)}",
        )
    context = record.get("context")
    if context is not None and not isinstance(context, dict):
        return LineProblem(
            ReadProblem.WRONG_TYPE, f"context must be an object, got {_describe(context)}"
        )
    return None

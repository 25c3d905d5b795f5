"""Bounded request fields: every value a client sends has a declared limit, checked by pydantic.

BentoML validates API parameters with these types before our code runs, so a bad value is a 400
naming the field (`detail[].loc`), and /docs.json declares the same bounds (maxLength, pattern,
nesting) that the validators enforce.
"""

from __future__ import annotations

import json
import math
import re
import sys
from typing import Annotated, Any

from pydantic import AfterValidator, Field, WithJsonSchema
from pydantic.fields import FieldInfo

# One bound for intents and identifiers, shared with ingestion (which quarantines longer intents).
from conversations.schema import ID_MAX_CHARS

CONTEXT_MAX_DEPTH = 3  # the context object itself is level 1: {"user": {"previous_intents": [...]}}
CONTEXT_MAX_BYTES = 16_384  # as compact JSON
# Zero-width and invisible format characters: a text of only these (and spaces) shows nothing,
# so it is as blank as an empty one (an attacker's "non-empty" message, a model fed nothing).
INVISIBLE_CHARS = "\u200b\u200c\u200d\u2060\ufeff"
# Python's \s is str.isspace(), as str.strip() uses.
_NON_BLANK = re.compile(rf"[^\s{INVISIBLE_CHARS}]")
# PostgreSQL text cannot hold U+0000: a stored field with it failed at insert (a 500). The
# schema patterns say so in ECMA-262 and Python syntax alike (`\u0000` is the NUL escape in both).
_NO_NUL_PATTERN = r"^[^\u0000]*$"
# No NUL anywhere and at least one character that is neither space nor NUL (what both
# validators of a text check), as one pattern: a schema has room for one.
_TEXT_PATTERN = r"^[^\u0000]*[^\s\u0000\u200b\u200c\u200d\u2060\ufeff][^\u0000]*$"


def is_blank(text: str) -> bool:
    """True when `text` holds nothing visible: only whitespace and zero-width characters."""
    return _NON_BLANK.search(text) is None


def _not_blank(value: str) -> str:
    if is_blank(value):
        raise ValueError("must not be empty or only whitespace / invisible characters")
    return value


def _no_nul(value: str) -> str:
    if "\x00" in value:
        raise ValueError("contains the NUL character (U+0000)")
    return value


def text_bounds(max_chars: int) -> FieldInfo:
    """At most `max_chars` characters; the schema pattern documents what NO_NUL, NOT_BLANK check.

    A message text is `Annotated[str, text_bounds(n), NO_NUL, NOT_BLANK]`: a static alias the
    type checker reads as `str`, with the bound taken from the settings at import time.
    """
    return Field(max_length=max_chars, json_schema_extra={"pattern": _TEXT_PATTERN})


# At least one visible character, checked in Python so that "space" means str.isspace().
NOT_BLANK = AfterValidator(_not_blank)
# No NUL character: refused with a 400 naming the field on every store, not only PostgreSQL.
NO_NUL = AfterValidator(_no_nul)
IntentName = Annotated[str, text_bounds(ID_MAX_CHARS), NO_NUL, NOT_BLANK]
Identifier = Annotated[
    str,
    Field(min_length=1, max_length=ID_MAX_CHARS, json_schema_extra={"pattern": _NO_NUL_PATTERN}),
    NO_NUL,
]


def _check_json(value: Any, depth: int, path: str) -> None:
    """Raise ValueError naming the first place `value` nests too deep or has a non-finite number."""
    if isinstance(value, dict | list):
        if depth > CONTEXT_MAX_DEPTH:
            raise ValueError(f"{path} nests deeper than {CONTEXT_MAX_DEPTH} levels")
        children = value.items() if isinstance(value, dict) else enumerate(value)
        for key, child in children:
            # Keys are the client's: a shortened one is enough to say where.
            place = f"{path}.{key[:40]}" if isinstance(key, str) else f"{path}[{key}]"
            _check_json(child, depth + 1, place)
    elif isinstance(value, float) and not math.isfinite(value):
        raise ValueError(f"{path} is not a finite number")
    elif isinstance(value, int) and not isinstance(value, bool) and abs(value) > sys.float_info.max:
        # Context features are floats: a 400-digit integer would overflow them.
        raise ValueError(f"{path} is too large a number")


def _bounded_context(context: dict[str, Any]) -> dict[str, Any]:
    _check_json(context, 1, "context")
    # The standard library, not orjson: a valid context may hold integers beyond 64 bits.
    size = len(json.dumps(context, ensure_ascii=False, separators=(",", ":")).encode())
    if size > CONTEXT_MAX_BYTES:
        raise ValueError(f"context is {size} bytes as JSON; the maximum is {CONTEXT_MAX_BYTES}")
    return context


def _json_schema(depth: int) -> dict[str, Any]:
    """The JSON Schema of a value that may still nest `depth` more levels."""
    scalars: list[dict[str, Any]] = [
        {"type": "string"},
        {"type": "number", "minimum": -sys.float_info.max, "maximum": sys.float_info.max},
        {"type": "boolean"},
        {"type": "null"},
    ]
    if depth == 0:
        return {"anyOf": scalars}
    child = _json_schema(depth - 1)
    containers = [
        {"type": "array", "items": child},
        {"type": "object", "additionalProperties": child},
    ]
    return {"anyOf": [*scalars, *containers]}


Context = Annotated[
    dict[str, Any],
    AfterValidator(_bounded_context),
    WithJsonSchema(
        {
            "type": "object",
            "additionalProperties": _json_schema(CONTEXT_MAX_DEPTH - 1),
            "description": (
                f"Conversation context: JSON nested at most {CONTEXT_MAX_DEPTH} levels deep "
                f"(this object is the first), at most {CONTEXT_MAX_BYTES} bytes as compact JSON."
            ),
        }
    ),
]

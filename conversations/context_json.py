"""A message's context: a JSON object whose documented keys have the documented types.

See data/README.md (`context`); other keys are kept and ignored.
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd

from conversations.schema import CONTEXT_LIST_KEYS, CONTEXT_NUMERIC_KEYS

# Deeper contexts are refused: Python's JSON parser and encoder recurse once per level and
# raise RecursionError near 1,000 levels (where exactly depends on the caller's stack), and no
# documented key is deeper than two.
MAX_CONTEXT_DEPTH = 64
_TOO_DEEP = f"nested more than {MAX_CONTEXT_DEPTH} levels deep"


class ContextError(ValueError):
    """A context value that is not a JSON object of the documented shape."""


def parse_context(raw: Any) -> dict[str, Any]:
    """Parse a context JSON object and check the documented keys have the documented types."""
    if raw is None or (isinstance(raw, float) and pd.isna(raw)) or raw == "":
        return {}
    if isinstance(raw, dict):
        context = raw
    else:
        try:
            context = json.loads(raw)
        except RecursionError as error:
            raise ContextError(_TOO_DEEP) from error
        except (TypeError, json.JSONDecodeError) as error:
            raise ContextError(f"not valid JSON ({error})") from error
    # Text with no more brackets than the limit cannot nest deeper (the common case: no walk).
    few_brackets = isinstance(raw, str) and raw.count("{") + raw.count("[") <= MAX_CONTEXT_DEPTH
    if not few_brackets and _deeper_than(context, MAX_CONTEXT_DEPTH):
        raise ContextError(_TOO_DEEP)
    if not isinstance(context, dict):
        raise ContextError(f"expected a JSON object, got {type(context).__name__}")
    if _documented_shape(context):  # the common case, checked in one pass
        return context
    for group, key in CONTEXT_NUMERIC_KEYS:
        value = _nested(context, group, key)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int | float)):
            raise ContextError(f"{group}.{key} must be a number, got {value!r}")
    for group, key in CONTEXT_LIST_KEYS:
        value = _nested(context, group, key)
        if value is not None and not isinstance(value, list):
            raise ContextError(f"{group}.{key} must be a list, got {value!r}")
    return context


def _deeper_than(value: Any, limit: int) -> bool:
    """Whether objects and arrays nest in `value` more than `limit` levels deep."""
    # An explicit stack, not recursion: the value may be nested deeper than Python's stack allows.
    if not isinstance(value, dict | list):
        return False
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            return True
        children = item.values() if isinstance(item, dict) else item
        stack.extend((child, depth + 1) for child in children if isinstance(child, dict | list))
    return False


# Per group of the context: its numeric keys and its list keys.
_GROUP_KEYS = tuple(
    (
        group,
        tuple(key for g, key in CONTEXT_NUMERIC_KEYS if g == group),
        tuple(key for g, key in CONTEXT_LIST_KEYS if g == group),
    )
    for group in dict.fromkeys(g for g, _ in (*CONTEXT_NUMERIC_KEYS, *CONTEXT_LIST_KEYS))
)


def _documented_shape(context: dict[str, Any]) -> bool:
    """Whether every documented key has its documented type; the checks below say what is not."""
    for group, numeric_keys, list_keys in _GROUP_KEYS:
        section = context.get(group)
        if section is None:
            continue
        if not isinstance(section, dict):
            return False
        for key in numeric_keys:
            value = section.get(key)
            if value is not None and (
                isinstance(value, bool) or not isinstance(value, int | float)
            ):
                return False
        for key in list_keys:
            value = section.get(key)
            if value is not None and not isinstance(value, list):
                return False
    return True


def _nested(context: dict[str, Any], group: str, key: str) -> Any:
    section = context.get(group)
    if section is None:
        return None
    if not isinstance(section, dict):
        raise ContextError(f"{group} must be an object, got {section!r}")
    return section.get(key)

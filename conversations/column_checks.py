"""Column-wise versions of validation's per-value checks, each exact to its scalar definition.

Validation used to check one row at a time (one `pd.to_datetime` call per row, ~1.4 ms a row).
These functions answer the same questions for a whole column at once. Every one gives, value
for value, the answer of the scalar check named in its docstring: the cheap vectorised path
covers the values the readers produce (text or None); any other value falls back to the scalar
check, so the outcome never depends on how a column happens to be typed.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np
import pandas as pd

ISO8601 = "ISO8601"
# Parsing a column, pandas 2.x carries a UTC offset over to a later value without one and can
# wrap around past the nanosecond range; values near either end of that range are therefore
# parsed again alone (a UTC offset moves a time by less than a day).
_EDGE = pd.Timedelta(days=2)
_LOW, _HIGH = (
    pd.Timestamp.min.tz_localize("UTC") + _EDGE,
    pd.Timestamp.max.tz_localize("UTC") - _EDGE,
)


def is_blank(value: Any) -> bool:
    """Whether a raw value is missing: None, NaN, or text that is empty or only whitespace."""
    return (
        value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == ""
    )


def is_set(value: Any) -> bool:
    """Whether a raw flag is set (pandas hands back numpy booleans, NaN or None for none)."""
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and bool(value)


def parses_as_iso8601(value: Any) -> bool:
    """Whether one value is a time `pd.to_datetime(..., format="ISO8601")` can read."""
    return not pd.isna(pd.to_datetime(value, utc=True, errors="coerce", format=ISO8601))


def by_position(frame: pd.DataFrame, name: str) -> pd.Series:
    """`frame[name]` indexed by position (None everywhere when the column is absent)."""
    if name not in frame.columns:
        return pd.Series([None] * len(frame), dtype=object)
    return frame[name].reset_index(drop=True)


def _is_text(value: Any) -> bool:
    return isinstance(value, str)


def _split(values: pd.Series) -> tuple[pd.Series, pd.Series]:
    """The text values of a column and the rest (positions kept)."""
    if pd.api.types.infer_dtype(values, skipna=True) in ("string", "empty"):
        # Only text and missing values (the readers' columns): one pass in C, not one call each.
        text = values.notna().to_numpy()
    else:
        text = values.map(_is_text).to_numpy(dtype=bool)
    return values[text], values[~text]


def _by_kind(
    values: pd.Series,
    on_text: Callable[[pd.Series], pd.Series],
    on_other: Callable[[Any], Any],
    dtype: str,
) -> np.ndarray:
    """`on_text` over the text values as one column, `on_other` over each other value."""
    text, other = _split(values)
    result = pd.Series(np.zeros(len(values), dtype=dtype), index=values.index)
    if len(text):
        result[text.index] = on_text(text).to_numpy(dtype=dtype)
    if len(other):
        result[other.index] = other.map(on_other).to_numpy(dtype=dtype)
    return result.to_numpy()


def blank_mask(values: pd.Series) -> np.ndarray:
    """`is_blank` for every value of a column."""
    return _by_kind(values, lambda text: text.str.strip().eq(""), is_blank, "bool")


def set_mask(values: pd.Series) -> np.ndarray:
    """`is_set` for every value of a column."""
    if values.dtype == bool:  # the readers' label flag: nothing to convert
        return values.to_numpy()
    return values.map(is_set).to_numpy(dtype=bool)


def contains_mask(values: pd.Series, pattern: re.Pattern[str]) -> np.ndarray:
    """Whether each value is text in which `pattern` is found (never for other values)."""
    return _by_kind(values, lambda text: text.str.contains(pattern), lambda _: False, "bool")


def text_lengths(values: pd.Series) -> np.ndarray:
    """`len(str(value))` for every value of a column."""
    return _by_kind(values, lambda text: text.str.len(), lambda value: len(str(value)), "int64")


def unknown_mask(values: pd.Series, allowed: set[str]) -> np.ndarray:
    """Whether each value is not one of `allowed` (None and NaN are not)."""
    return ~values.isin(allowed).to_numpy(dtype=bool)


def bad_timestamp_mask(values: pd.Series, candidates: np.ndarray) -> np.ndarray:
    """Whether each candidate value is not `parses_as_iso8601` (never for other positions)."""
    bad = np.zeros(len(values), dtype=bool)
    text, other = _split(values[candidates])
    if len(text):
        parsed = pd.to_datetime(text, utc=True, errors="coerce", format=ISO8601)
        # pandas 2.x carries state from value to value when it parses a column (a UTC offset
        # moves on to a later time written without one: kept rows' times, see _canonical), but
        # whether a value parses does not change; tests/conversations/test_validation.py checks
        # each row validated alone gets the verdict it gets among the others.
        bad[text.index] = parsed.isna().to_numpy()
    if len(other):
        bad[other.index] = ~other.map(parses_as_iso8601).to_numpy(dtype=bool)
    return bad


def first_positions(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The positions of repeated keys and, for each, the position where its key first appears."""
    repeated = keys.duplicated(keep="first").to_numpy()
    first_of = keys[~repeated]
    first = pd.Series(first_of.index, index=first_of.to_numpy())
    return keys.index[repeated].to_numpy(), first.loc[keys[repeated].to_numpy()].to_numpy()

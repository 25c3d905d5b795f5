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


def is_blank(value: Any) -> bool:
    """Whether a raw value is missing: None, NaN, or text that is empty or only whitespace."""
    return (
        value is None or (isinstance(value, float) and pd.isna(value)) or str(value).strip() == ""
    )


def is_set(value: Any) -> bool:
    """Whether a raw flag is set (pandas hands back numpy booleans, NaN or None for none)."""
    return value is not None and not (isinstance(value, float) and pd.isna(value)) and bool(value)


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


def first_positions(keys: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """The positions of repeated keys and, for each, the position where its key first appears."""
    repeated = keys.duplicated(keep="first").to_numpy()
    first_of = keys[~repeated]
    first = pd.Series(first_of.index, index=first_of.to_numpy())
    return keys.index[repeated].to_numpy(), first.loc[keys[repeated].to_numpy()].to_numpy()

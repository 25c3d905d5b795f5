"""Parsing a column of ISO-8601 times, each value on its own terms (a time without offset is UTC).

`pd.to_datetime(column, utc=True, format="ISO8601")` alone is not enough (pandas 2.3):
- it carries a UTC offset over to a later value written without one (`2026-11-01 10:00:00`
  after a `+05:30` row comes out as 04:30 UTC), so values with an offset and values without are
  parsed as two columns;
- it wraps round past the nanosecond range when the offset moves a time over its edge
  (`2262-04-11T23:00:00-05:00` comes out in 1677), so times near either edge are checked again
  in exact integer arithmetic;
- it reads the words `now` and `today` as the time of parsing: a log's time must be written in
  the data, so a value must start with a four-digit year;
- it refuses the lowercase `t` and `z` ISO 8601 allows, so they are read as `T` and `Z`.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np
import pandas as pd

ISO8601 = "ISO8601"
# A value must start with its year (this rules out `now`, `today` and the like).
_YEAR_FIRST = re.compile(r"\d{4}")
# A time (after a `T` or space) ending in a UTC offset: `Z`, `±hh`, `±hhmm` or `±hh:mm`.
_OFFSET = re.compile(
    r"\A(?P<wall>.*[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?)"
    r"(?P<offset>Z|(?P<sign>[+-])(?P<hours>\d{2})(?::?(?P<minutes>\d{2}))?)\Z"
)
# An offset moves a time by less than a day, so only results this close to either end of the
# nanosecond range can have wrapped round.
_EDGE = pd.Timedelta(days=2)
_LOW, _HIGH = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
_NS_PER_MINUTE = 60 * 10**9
_UTC_NS = "datetime64[ns, UTC]"


def parse_times(values: pd.Series) -> pd.Series:
    """Each value as a UTC time, NaT where it is not one (blank, not ISO-8601, out of range).

    Any value that is not text goes through `parse_time`; the result is indexed like `values`.
    """
    result = pd.Series(pd.NaT, index=values.index, dtype=_UTC_NS)
    with_offset: dict[Any, str] = {}
    naive: dict[Any, str] = {}
    others: dict[Any, pd.Timestamp | None] = {}
    # One pass in Python (pandas' .str methods would make four).
    for label, value in values.items():
        if not isinstance(value, str):
            others[label] = parse_time(value)
            continue
        # ISO 8601 allows `t` and `z`, pandas reads only `T` and `Z` (no other letter makes a time).
        text = value.strip().upper()
        if _YEAR_FIRST.match(text):
            (with_offset if _OFFSET.match(text) else naive)[label] = text
    for group, has_offset in ((with_offset, True), (naive, False)):
        if group:
            text_group = pd.Series(group, dtype=object)
            # One call per group: every value has an offset, or none has (see the docstring).
            parsed = pd.Series(
                pd.to_datetime(text_group, utc=True, errors="coerce", format=ISO8601),
                index=text_group.index,
            )
            if has_offset:  # a time without offset is its UTC time: it cannot wrap round
                parsed = parsed.where(~_wrapped(text_group, parsed))
            result[parsed.index] = parsed
    if others:
        result[list(others)] = pd.Series(list(others.values()), dtype=_UTC_NS).to_numpy()
    return result


def parse_time(value: Any) -> pd.Timestamp | None:
    """One value as a UTC time, or None where `parse_times` gives NaT."""
    if isinstance(value, str):
        parsed = parse_times(pd.Series([value], dtype=object)).iloc[0]
        return None if pd.isna(parsed) else parsed
    parsed = pd.to_datetime(value, utc=True, errors="coerce", format=ISO8601)
    return None if pd.isna(parsed) else parsed


def _wrapped(text: pd.Series, parsed: pd.Series) -> np.ndarray:
    """Which times with an offset pandas wrapped round (the UTC time is outside the range)."""
    near = ((parsed < _LOW + _EDGE) | (parsed > _HIGH - _EDGE)).to_numpy(dtype=bool)
    wrapped = np.zeros(len(text), dtype=bool)
    if not near.any():
        return wrapped
    parts = text[near].str.extract(_OFFSET)
    walls = pd.to_datetime(parts["wall"], errors="coerce", format=ISO8601)  # naive: no offset
    hours = pd.to_numeric(parts["hours"]).fillna(0)
    minutes = (hours * 60 + pd.to_numeric(parts["minutes"]).fillna(0)).astype("int64")
    signs = parts["sign"].map({"-": -1}).fillna(1).astype("int64")
    # Python ints: the sum of an in-range wall time and an offset may not fit in 64 bits.
    utc_ns = [
        wall - sign * offset * _NS_PER_MINUTE
        for wall, sign, offset in zip(
            walls.to_numpy(dtype="int64").tolist(), signs.tolist(), minutes.tolist(), strict=True
        )
    ]
    wrapped[near] = [not _LOW.value <= ns <= _HIGH.value for ns in utc_ns]
    return wrapped


def bad_time_mask(values: pd.Series, candidates: np.ndarray) -> tuple[np.ndarray, pd.Series]:
    """Which candidate values are not times, and the times of all candidates (by position)."""
    times = parse_times(values[candidates])
    bad = np.zeros(len(values), dtype=bool)
    bad[times.index] = times.isna().to_numpy()
    return bad, times

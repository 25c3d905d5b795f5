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
# The separator and UTC offset ISO 8601 allows in either case; pandas reads only upper case.
_UPPER = str.maketrans("tz", "TZ")
# A value must start with its year (this rules out `now`, `today` and the like).
_YEAR_FIRST = re.compile(r"\d{4}")
# A time (after a `T` or space) ending in a UTC offset: `Z`, `±hh`, `±hhmm` or `±hh:mm`.
_OFFSET = re.compile(
    r"(?P<wall>.*[T ]\d{2}(?::?\d{2}(?::?\d{2}(?:[.,]\d+)?)?)?)"
    r"(?P<offset>Z|(?P<sign>[+-])(?P<hours>\d{2})(?::?(?P<minutes>\d{2}))?)"
)
# An offset moves a time by less than a day, so only results this close to either end of the
# nanosecond range can have wrapped round.
_EDGE = pd.Timedelta(days=2)
_LOW, _HIGH = pd.Timestamp.min.tz_localize("UTC"), pd.Timestamp.max.tz_localize("UTC")
_NS_PER_MINUTE = 60 * 10**9


def parse_times(values: pd.Series) -> pd.Series:
    """Each value as a UTC time, NaT where it is not one (blank, not ISO-8601, out of range).

    Any value that is not text goes through `parse_time`; the result is indexed like `values`.
    """
    result = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns, UTC]")
    is_text = values.map(lambda value: isinstance(value, str)).to_numpy(dtype=bool)
    text = values[is_text].astype(str).str.strip().str.translate(_UPPER)
    text = text[text.str.match(_YEAR_FIRST)]
    with_offset = text.str.fullmatch(_OFFSET).to_numpy(dtype=bool)
    for group in (text[with_offset], text[~with_offset]):
        if len(group):
            result[group.index] = _checked_edges(group, _parse(group))
    others = values[~is_text]
    if len(others):
        result[others.index] = pd.Series(
            [parse_time(value) or pd.NaT for value in others], dtype="datetime64[ns, UTC]"
        ).to_numpy()
    return result


def parse_time(value: Any) -> pd.Timestamp | None:
    """One value as a UTC time, or None where `parse_times` gives NaT."""
    if isinstance(value, str):
        parsed = parse_times(pd.Series([value], dtype=object)).iloc[0]
        return None if pd.isna(parsed) else parsed
    parsed = pd.to_datetime(value, utc=True, errors="coerce", format=ISO8601)
    return None if pd.isna(parsed) else parsed


def _parse(text: pd.Series) -> pd.Series:
    # One call per group: every value of `text` has an offset, or none has (see the docstring).
    return pd.Series(
        pd.to_datetime(text, utc=True, errors="coerce", format=ISO8601), index=text.index
    )


def _checked_edges(text: pd.Series, parsed: pd.Series) -> pd.Series:
    """`parsed` with NaT where a time near an edge of the range is really outside it."""
    near = ((parsed < _LOW + _EDGE) | (parsed > _HIGH - _EDGE)).to_numpy(dtype=bool)
    for label in text.index[near]:
        if not _in_range(text[label]):
            parsed[label] = pd.NaT
    return parsed


def _in_range(value: str) -> bool:
    """Whether the UTC time `value` (which pandas parsed) is in the nanosecond range."""
    found = _OFFSET.fullmatch(value)
    if found is None:  # no offset: the wall time is the UTC time, which pandas parsed unwrapped
        return True
    wall = pd.to_datetime(found["wall"], format=ISO8601)
    offset_minutes = 0
    if found["sign"]:
        offset_minutes = int(found["hours"]) * 60 + int(found["minutes"] or 0)
        offset_minutes *= -1 if found["sign"] == "-" else 1
    utc_ns = int(wall.value) - offset_minutes * _NS_PER_MINUTE  # Python ints never wrap
    return bool(_LOW.value <= utc_ns <= _HIGH.value)


def bad_time_mask(values: pd.Series, candidates: np.ndarray) -> tuple[np.ndarray, pd.Series]:
    """Which candidate values are not times, and the times of all candidates (by position)."""
    times = parse_times(values[candidates])
    bad = np.zeros(len(values), dtype=bool)
    bad[times.index] = times.isna().to_numpy()
    return bad, times

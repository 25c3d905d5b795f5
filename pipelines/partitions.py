"""Daily time partitions of the conversation log, and which day each row belongs to.

Every row of the chat store and of the conversation JSONL files belongs to exactly one daily
partition: the UTC day of its `ts`, clamped to the partitions that exist (older rows belong to
the first day, rows dated after today to today's). A JSONL row with no usable `ts` (absent,
unparseable, or a line that could not be read) belongs to the day its file was last modified.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta

import dagster as dg

from conversations.timestamps import parse_time

FIRST_DAY = "2020-01-01"
# end_offset=1: today's partition exists while the day is still filling, so a run can ingest it.
DAILY = dg.DailyPartitionsDefinition(start_date=FIRST_DAY, end_offset=1)
RANGE_START_TAG = "dagster/asset_partition_range_start"
RANGE_END_TAG = "dagster/asset_partition_range_end"


def utc_day(ts: object) -> str | None:
    """The UTC day (`YYYY-MM-DD`) of an ISO-8601 timestamp, None when blank or unparseable."""
    if not isinstance(ts, str) or not ts.strip():
        return None
    try:
        moment = datetime.fromisoformat(ts.strip())
    except ValueError:
        # The forms Python does not parse but validation accepts, read as validation reads them.
        parsed = parse_time(ts)
        return None if parsed is None else parsed.strftime("%Y-%m-%d")
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.astimezone(UTC).strftime("%Y-%m-%d")


def last_key() -> str:
    """Today's partition (UTC), the newest one."""
    return DAILY.get_last_partition_key() or FIRST_DAY


def partition_key(day: str, last: str) -> str:
    """The partition holding rows of `day`: the day itself, clamped to [FIRST_DAY, last]."""
    return min(max(day, FIRST_DAY), last)


@dataclass(frozen=True)
class KeyRange:
    """Consecutive partition keys, first and last included."""

    first: str
    last: str

    def bounds(self, newest: str) -> tuple[datetime | None, datetime | None]:
        """The `ts` range whose rows belong to these partitions (open at either end of time)."""
        start = None if self.first == FIRST_DAY else _midnight(self.first)
        end = None if self.last == newest else _midnight(self.last) + timedelta(days=1)
        return start, end

    def days(self) -> int:
        """How many days the range holds."""
        return (date.fromisoformat(self.last) - date.fromisoformat(self.first)).days + 1

    def tags(self) -> dict[str, str]:
        """Run tags that make one run materialise this range (single-run backfill)."""
        return {RANGE_START_TAG: self.first, RANGE_END_TAG: self.last}


def _midnight(key: str) -> datetime:
    return datetime.combine(date.fromisoformat(key), datetime.min.time(), tzinfo=UTC)


def consecutive_ranges(keys: Iterable[str]) -> list[KeyRange]:
    """`keys` as the fewest ranges of consecutive days, oldest first."""
    ranges: list[KeyRange] = []
    for key in sorted(set(keys)):
        if ranges and date.fromisoformat(key) - date.fromisoformat(ranges[-1].last) == timedelta(
            days=1
        ):
            ranges[-1] = KeyRange(ranges[-1].first, key)
        else:
            ranges.append(KeyRange(key, key))
    return ranges


def spanning_range(keys: Iterable[str]) -> KeyRange | None:
    """One range from the oldest to the newest of `keys` (None for no keys)."""
    ordered = sorted(set(keys))
    return KeyRange(ordered[0], ordered[-1]) if ordered else None

"""The current window a monitoring run looks at."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime, timedelta


@dataclass(frozen=True)
class Window:
    """[start, end) in UTC."""

    start: datetime
    end: datetime

    @property
    def days(self) -> float:
        """Length in days."""
        return (self.end - self.start).total_seconds() / 86400

    def label(self) -> str:
        """Human-readable range."""
        return f"{self.start:%Y-%m-%d %H:%M} – {self.end:%Y-%m-%d %H:%M} UTC"

    def to_dict(self) -> dict[str, str]:
        """ISO form for summary.json."""
        return {"start": self.start.isoformat(), "end": self.end.isoformat()}


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def resolve_window(
    hours: float,
    start: datetime | None = None,
    end: datetime | None = None,
    now: datetime | None = None,
) -> Window:
    """An explicit range, or the `hours` before `end` (default: now)."""
    end = _utc(end) if end else (now or datetime.now(UTC))
    start = _utc(start) if start else end - timedelta(hours=hours)
    if start >= end:
        raise ValueError(f"window start {start} is not before its end {end}")
    return Window(start, end)

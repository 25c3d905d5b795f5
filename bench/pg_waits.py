"""How many PostgreSQL sessions wait on a lock, sampled while a benchmark runs.

The chat tier's writes take one advisory lock (serving/chat/event_log.py, EVENT_ORDER_LOCK) for
the length of their transaction, so that event seqs commit in order: with several workers, their
group commits queue on it. `LockWaits` samples `pg_stat_activity` ten times a second in a thread
and reports the mean number of the database's sessions waiting on an advisory lock, and on any
lock, and how many were active (running a statement or waiting).
"""

from __future__ import annotations

import threading
from dataclasses import dataclass

import sqlalchemy as sa

_SAMPLE = sa.text(
    "SELECT count(*) FILTER (WHERE wait_event_type = 'Lock' AND wait_event = 'advisory'),"
    " count(*) FILTER (WHERE wait_event_type = 'Lock'),"
    " count(*) FILTER (WHERE state = 'active')"
    " FROM pg_stat_activity WHERE datname = current_database() AND pid <> pg_backend_pid()"
)


@dataclass(frozen=True)
class LockWaitStats:
    """Mean sessions over the samples: waiting on an advisory lock, on any lock, active."""

    advisory: float
    any_lock: float
    active: float
    samples: int


class LockWaits:
    """Samples the database of `url` every `interval_s` until the `with` block ends."""

    def __init__(self, url: str, interval_s: float = 0.1) -> None:
        self.engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
        self.interval_s = interval_s
        self.totals = [0, 0, 0]
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        with self.engine.connect() as connection:
            while not self._stop.wait(self.interval_s):
                row = connection.execute(_SAMPLE).one()
                connection.rollback()  # a fresh snapshot of pg_stat_activity each time
                self.totals = [
                    total + int(value) for total, value in zip(self.totals, row, strict=True)
                ]
                self.samples += 1

    def stats(self) -> LockWaitStats:
        """The means so far."""
        n = max(self.samples, 1)
        advisory, any_lock, active = (round(total / n, 2) for total in self.totals)
        return LockWaitStats(advisory, any_lock, active, self.samples)

    def __enter__(self) -> LockWaits:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()
        self.engine.dispose()

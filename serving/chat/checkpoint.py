"""SQLite's WAL checkpoints, the bulk of them on a thread of their own, off the event loop.

In WAL mode a commit appends pages to the `-wal` file; a *checkpoint* copies them back into the
database file (and syncs both) so the WAL can start over. By default SQLite runs one inside
whichever commit leaves the WAL at 1,000 pages or more. The chat's group commits run on the
event loop (serving/chat/group_commit.py), so that commit, and every socket of the worker,
waited for the copy and its two syncs: 0.2-37 ms each, several a second under load
(bench/README.md, "A bot turn's cost").

Here the chat store's connections never checkpoint by themselves (`wal_autocheckpoint=0`). A
daemon thread runs a PASSIVE checkpoint on its own connection every `interval_s`: PASSIVE takes
no lock a writer or reader waits for, and sqlite3 releases the GIL while SQLite copies, so the
loop keeps running. But a WAL starts over only when a writer begins with every frame copied, and
under steady load a commit always lands during the thread's copy: with the thread alone the WAL
grew without end (500 MB in a minute of group commits). So once the WAL holds `restart_frames`,
the thread's next passes start right after a group commit (`after_commit` wakes it): the loop
then computes the model's batch, writing nothing, and a pass that ends before the next group
leaves every frame copied, so that group starts the WAL over. Should `loop_after` such tries
fail, the loop finishes a checkpoint itself after a group (what the thread's last pass left and
its syncs: ~10-30 ms on this machine's disk). A RESTART checkpoint from the thread would hold the
loop's writer off instead, and SQLite's busy handler made that wait up to 150 ms.

Durability is unchanged: a commit is durable (against a killed process; `synchronous=NORMAL`,
store_engine.py) once it is in the WAL, checkpointed or not, and SQLite replays the WAL at the next
open. Checkpoints bound the WAL's size and keep reads short. Other processes on the same file
(the pipeline, other workers) keep SQLite's automatic checkpoints.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass

import sqlalchemy as sa

from serving.prometheus_metrics import LazyCounter

logger = logging.getLogger("serving.chat")
checkpoints_total = LazyCounter(
    "chat_wal_checkpoints_total",
    "SQLite WAL checkpoints of the chat store on their own thread.",
)
checkpoint_seconds_total = LazyCounter(
    "chat_wal_checkpoint_seconds_total",
    "Time in the chat store's WAL checkpoints on their own thread.",
)
restarts_total = LazyCounter("chat_wal_restarts_total", "Times the chat store's WAL started over.")
loop_checkpoints_total = LazyCounter(
    "chat_wal_loop_checkpoints_total",
    "WAL checkpoints the event loop ran itself (the thread's tries failed).",
)
loop_checkpoint_seconds_total = LazyCounter(
    "chat_wal_loop_checkpoint_seconds_total", "Event-loop time in those checkpoints."
)


@dataclass(frozen=True)
class CheckpointStats:
    """What the checkpoints did so far: the thread's passes and the loop's finishing ones."""

    checkpoints: int  # the thread's passes
    total_ms: float
    max_ms: float
    restarts: int  # times the WAL started over
    loop_checkpoints: int  # checkpoints the loop ran itself
    loop_max_ms: float
    max_wal_frames: int  # the longest WAL the thread found (pages, 4 KB by default)


def file_database(engine: sa.Engine) -> str | None:
    """The database file of a SQLite engine; None for another database or an in-memory one."""
    database = engine.url.database
    if engine.dialect.name != "sqlite" or database in (None, "", ":memory:"):
        return None
    return database


class WalCheckpointer:
    """Takes an engine's WAL checkpoints off its commits: a thread copies, the loop restarts."""

    def __init__(
        self,
        engine: sa.Engine,
        database: str,
        interval_s: float = 0.5,
        restart_frames: int = 8192,
        loop_after: int = 20,
    ) -> None:
        """Turn automatic checkpoints off for `engine`'s connections (the thread not started).

        `restart_frames`: the WAL's length (pages; 32 MB at 4 KB) from which the WAL is to
        start over; `loop_after`: the thread's tries after as many commits before the loop's.
        """
        self.engine = engine
        self.database = database
        self.interval_s = interval_s
        self.restart_frames = restart_frames
        self.loop_after = loop_after
        self._restart_due = False  # the thread's reading: the WAL is long
        self._tries = 0  # the loop's count of commits since it found the WAL long
        self._committed = threading.Event()  # a group just committed: the thread's turn
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chat-checkpoint", daemon=True)
        self._checkpoints = self._restarts = self._loop_checkpoints = 0
        self._last_frames = self._max_frames = 0
        self._total_s = self._max_s = self._loop_max_s = 0.0
        sa.event.listen(engine, "connect", _no_autocheckpoint)
        # Connections the pool already holds were opened with automatic checkpoints on.
        engine.dispose()

    def start(self) -> None:
        """Start checkpointing every `interval_s`."""
        self._thread.start()

    def close(self) -> None:
        """Stop the thread after a last checkpoint."""
        self._stop.set()
        self._committed.set()
        if self._thread.is_alive():
            self._thread.join()

    def after_commit(self) -> None:
        """The writer, between two of its transactions: help the WAL start over when it is long.

        Nothing when the WAL is short (an attribute read). When long, wake the thread for a pass
        while the loop computes; after `loop_after` such tries, a PASSIVE checkpoint here of what
        the thread's last pass left: once nothing is left, the next write starts the WAL over
        (else, e.g. while the thread's pass runs, it is tried again after the next commit).
        """
        if not self._restart_due:
            self._tries = 0
            return
        self._tries += 1
        if self._tries <= self.loop_after:
            self._committed.set()
            return
        started = time.perf_counter()
        with self.engine.connect() as connection:
            row = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        elapsed = time.perf_counter() - started
        self._loop_checkpoints += 1
        self._loop_max_s = max(self._loop_max_s, elapsed)
        loop_checkpoints_total.inc()
        loop_checkpoint_seconds_total.inc(elapsed)
        busy, frames, copied = (int(value) for value in row)
        if not busy and copied == frames:
            self._tries = 0  # the thread's reading follows at its next pass

    def stats(self) -> CheckpointStats:
        """What the checkpoints did so far."""
        return CheckpointStats(
            self._checkpoints,
            round(self._total_s * 1000, 2),
            round(self._max_s * 1000, 2),
            self._restarts,
            self._loop_checkpoints,
            round(self._loop_max_s * 1000, 2),
            self._max_frames,
        )

    def _run(self) -> None:
        connection = sqlite3.connect(self.database, check_same_thread=False)
        try:
            while True:  # a last pass after `close`
                if self._restart_due:  # right after the loop's next commit (or in a while)
                    self._committed.wait(self.interval_s)
                    self._committed.clear()
                else:
                    self._stop.wait(self.interval_s)
                self._checkpoint(connection)
                if self._stop.is_set():
                    return
        finally:
            connection.close()

    def _checkpoint(self, connection: sqlite3.Connection) -> None:
        started = time.perf_counter()
        try:
            _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        except sqlite3.Error as exc:  # e.g. the file was removed under us: try again next time
            logger.warning("WAL checkpoint of %s failed: %s", self.database, exc)
            return
        elapsed = time.perf_counter() - started
        if frames < self._last_frames:  # a writer found every frame copied: the WAL started over
            self._restarts += 1
            restarts_total.inc()
        self._last_frames = frames
        self._restart_due = frames >= self.restart_frames
        self._checkpoints += 1
        self._max_frames = max(self._max_frames, int(frames))
        self._total_s += elapsed
        self._max_s = max(self._max_s, elapsed)
        checkpoints_total.inc()
        checkpoint_seconds_total.inc(elapsed)


def _no_autocheckpoint(dbapi_connection: object, _record: object) -> None:
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA wal_autocheckpoint=0")
    cursor.close()

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
the next group's commit is followed, on the loop, by a PASSIVE checkpoint of what the thread's
last pass left (the pages of a few ms) and its syncs; nothing is written meanwhile, so the next
write starts the WAL over. A RESTART checkpoint from the thread would do the same by holding the
loop's writer off, and SQLite's busy handler made that wait up to 150 ms.

Durability is unchanged: a commit is durable (against a killed process; `synchronous=NORMAL`,
tables.py) once it is in the WAL, checkpointed or not, and SQLite replays the WAL at the next
open. Checkpoints bound the WAL's size and keep reads short. Other processes on the same file
(the pipeline, other workers) keep SQLite's automatic checkpoints.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
import time
from dataclasses import dataclass

import bentoml
import sqlalchemy as sa

logger = logging.getLogger("serving.chat")
checkpoints_total = bentoml.metrics.Counter(
    name="chat_wal_checkpoints_total",
    documentation="SQLite WAL checkpoints of the chat store on their own thread.",
)
checkpoint_seconds_total = bentoml.metrics.Counter(
    name="chat_wal_checkpoint_seconds_total",
    documentation="Time in the chat store's WAL checkpoints on their own thread.",
)
restarts_total = bentoml.metrics.Counter(
    name="chat_wal_restarts_total",
    documentation="Checkpoints finished on the event loop so that the WAL starts over.",
)
restart_seconds_total = bentoml.metrics.Counter(
    name="chat_wal_restart_seconds_total",
    documentation="Event-loop time in those finishing checkpoints.",
)


@dataclass(frozen=True)
class CheckpointStats:
    """What the checkpoints did so far: the thread's passes and the loop's finishing ones."""

    checkpoints: int
    total_ms: float
    max_ms: float
    restarts: int
    restart_max_ms: float
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
    ) -> None:
        """Turn automatic checkpoints off for `engine`'s connections (the thread not started).

        `restart_frames`: the WAL's length (pages; 32 MB at 4 KB) from which `after_commit`
        finishes a checkpoint so that the WAL starts over.
        """
        self.engine = engine
        self.database = database
        self.interval_s = interval_s
        self.restart_frames = restart_frames
        self._restart_due = False  # set by the thread, cleared by the loop
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="chat-checkpoint", daemon=True)
        self._checkpoints = self._restarts = self._max_frames = 0
        self._total_s = self._max_s = self._restart_max_s = 0.0
        sa.event.listen(engine, "connect", _no_autocheckpoint)
        # Connections the pool already holds were opened with automatic checkpoints on.
        engine.dispose()

    def start(self) -> None:
        """Start checkpointing every `interval_s`."""
        self._thread.start()

    def close(self) -> None:
        """Stop the thread after a last checkpoint."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join()

    def after_commit(self) -> None:
        """The writer, between two of its transactions: start the WAL over when it is long.

        Cheap when nothing is due (one attribute read). When due, a PASSIVE checkpoint of what
        the thread's last pass left; the WAL starts over at the next write once nothing is left
        (else, e.g. while the thread's pass runs, it is tried again after the next commit).
        """
        if not self._restart_due:
            return
        started = time.perf_counter()
        with self.engine.connect() as connection:
            row = connection.exec_driver_sql("PRAGMA wal_checkpoint(PASSIVE)").one()
        busy, frames, copied = (int(value) for value in row)
        if busy or copied < frames:
            return
        elapsed = time.perf_counter() - started
        self._restart_due = False
        self._restarts += 1
        self._restart_max_s = max(self._restart_max_s, elapsed)
        restarts_total.inc()
        restart_seconds_total.inc(elapsed)

    def stats(self) -> CheckpointStats:
        """What the checkpoints did so far."""
        return CheckpointStats(
            self._checkpoints,
            round(self._total_s * 1000, 2),
            round(self._max_s * 1000, 2),
            self._restarts,
            round(self._restart_max_s * 1000, 2),
            self._max_frames,
        )

    def _run(self) -> None:
        connection = sqlite3.connect(self.database, check_same_thread=False)
        try:
            while not self._stop.wait(self.interval_s):
                self._checkpoint(connection)
            self._checkpoint(connection)
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
        if frames >= self.restart_frames:
            self._restart_due = True
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

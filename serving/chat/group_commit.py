"""Group commit: the chat's writes of concurrent messages in one transaction, off the event loop.

Each customer message used to be its own committed transaction, each bot reply another two (the
prediction, then the reply), every one a separate hand-off to the store thread. Here a write is a
*job*, a function of an open connection; jobs queued while the store is busy run together, in
order, in one transaction on the store's writer, and their callers resume after it commits (so an
`ack` still follows the commit of its message). One commit and one wake-up of the event loop serve
the whole group, and the customers of one group reach the model together: the micro-batcher gets
real batches.

A job that raises rolls the group back; then every job of the group runs again alone, in its own
transaction (`alone`, when given, is how a job runs by itself, e.g. with its resend handling), so
one bad message never fails another. Nothing is acknowledged before a commit either way.

Where a group runs: on a server database (PostgreSQL: network round trips), on the executor's
thread. On SQLite, without an executor, on the event loop itself, between its other callbacks,
like the micro-batcher's model calls (serving/batcher.py). A writer thread there was a GIL
convoy: sqlite3 lets go of the GIL around every statement and then waits for the busy event loop
to hand it back (up to the 5 ms switch interval), so a group of 60 jobs of ~10 statements each
took far longer than its CPU, and callers queued behind it. On the loop a group costs its CPU
and nothing else: WAL commits with `synchronous=NORMAL` do not wait for the disk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Executor
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

import sqlalchemy as sa

from serving.chat.event_log import transaction
from serving.prometheus_metrics import LazyCounter

logger = logging.getLogger("serving.chat")
T = TypeVar("T")
Job = Callable[[sa.Connection], T]
# Most jobs per transaction: a group is one write lock held, and its callers wait for all of it.
MAX_GROUP = 64
# The mean group is jobs ÷ groups (bench/chat.py reads both before and after a run).
groups_total = LazyCounter("chat_commit_groups_total", "Group commits run (one transaction each).")
jobs_total = LazyCounter("chat_commit_jobs_total", "Write jobs run in group commits.")


@dataclass
class _Pending(Generic[T]):
    job: Job[T]
    alone: Callable[[], T] | None
    future: asyncio.Future[T]


class GroupCommitter:
    """Runs write jobs on one executor, each batch of queued jobs in one transaction."""

    def __init__(self, engine: sa.Engine, executor: Executor | None) -> None:
        """`executor`: the thread groups run on; None runs them on the event loop (SQLite)."""
        self.engine = engine
        self.executor = executor
        self._lock = threading.Lock()
        self._pending: list[_Pending[Any]] = []
        self._running = False
        self.groups = 0
        self.jobs = 0
        # Called on the loop between two groups (SQLite: serving/chat/checkpoint.py restarts the
        # WAL there, when nothing else writes).
        self.after_group: Callable[[], None] | None = None

    async def run(self, job: Job[T], alone: Callable[[], T] | None = None) -> T:
        """Run `job` in the next group's transaction; returns its result once that committed."""
        loop = asyncio.get_running_loop()
        future: asyncio.Future[T] = loop.create_future()
        with self._lock:
            self._pending.append(_Pending(job, alone, future))
            start = not self._running
            self._running = True
        if start and self.executor is None:
            # After the callbacks already due: every job queued in this turn of the loop (the
            # frames read by one poll of the sockets) joins the group.
            loop.call_soon(self._drain_on_loop, loop)
        elif start:
            loop.run_in_executor(self.executor, self._drain, loop)
        return await future

    def _drain_on_loop(self, loop: asyncio.AbstractEventLoop) -> None:
        """Event loop: commit one group, then yield to the loop before the next one."""
        with self._lock:
            group = self._pending[:MAX_GROUP]
            del self._pending[:MAX_GROUP]
            self._running = bool(self._pending)
        if group:
            _settle(group, self._commit(group))
            if self.after_group is not None:
                try:
                    self.after_group()
                except Exception:  # its own business: the next group runs regardless
                    logger.exception("after a group commit")
        if self._running:  # sockets are read and answers sent between two groups
            loop.call_soon(self._drain_on_loop, loop)

    def _drain(self, loop: asyncio.AbstractEventLoop) -> None:
        """Writer thread: commit groups until nothing is queued."""
        while True:
            with self._lock:
                group = self._pending[:MAX_GROUP]
                del self._pending[:MAX_GROUP]
                if not group:
                    self._running = False
                    return
            outcomes = self._commit(group)
            loop.call_soon_threadsafe(_settle, group, outcomes)

    def _commit(self, group: list[_Pending[Any]]) -> list[tuple[bool, Any]]:
        """Run a group in one transaction; on any failure, each job alone."""
        self.groups += 1
        self.jobs += len(group)
        groups_total.inc()
        jobs_total.inc(len(group))
        if self.engine.dialect.name != "sqlite":
            # Rooms' rows are locked in one order (each room's jobs keep theirs), so two
            # workers' groups writing the same two rooms never each hold one the other waits
            # for. Sorted in place: the caller settles the same list.
            group.sort(key=_room_of)
        try:
            # On PostgreSQL the jobs' events get their seqs at the end, under the event-order
            # lock (serving/chat/event_log.py): another worker's group is not held up by these
            # jobs' work, only by their two inserts and the commit.
            with transaction(self.engine) as connection:
                return [(True, pending.job(connection)) for pending in group]
        except Exception as exc:
            if len(group) == 1 and group[0].alone is None:
                return [(False, exc)]
            logger.debug("group of %d rolled back (%r); each job alone", len(group), exc)
        return [self._alone(pending) for pending in group]

    def _alone(self, pending: _Pending[Any]) -> tuple[bool, Any]:
        try:
            if pending.alone is not None:
                return True, pending.alone()
            with transaction(self.engine) as connection:
                return True, pending.job(connection)
        except Exception as exc:
            return False, exc

    def stats(self) -> dict[str, Any]:
        """Groups committed and mean jobs per group so far."""
        mean = round(self.jobs / self.groups, 2) if self.groups else 0.0
        return {"groups": self.groups, "jobs": self.jobs, "mean_group": mean}


def _room_of(pending: _Pending[Any]) -> str:
    """The room a job writes, when it says (turns.py's jobs have a `room_id`)."""
    return getattr(pending.job, "room_id", None) or ""


def _settle(group: list[_Pending[Any]], outcomes: list[tuple[bool, Any]]) -> None:
    """Event loop: hand each caller its result or exception (one wake-up for the group)."""
    for pending, (ok, value) in zip(group, outcomes, strict=True):
        if pending.future.done():  # its caller was cancelled (socket gone): committed anyway
            continue
        if ok:
            pending.future.set_result(value)
        else:
            pending.future.set_exception(value)

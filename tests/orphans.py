"""Processes a test session started and left running: servers, brokers, browsers.

A process the suite forgets is not always a child of pytest any more: BentoML workers are
orphaned when their arbiter is killed, and daemons double-fork. So pytest makes itself a child
subreaper (Linux `prctl(PR_SET_CHILD_SUBREAPER)`): an orphaned descendant is re-parented to
pytest instead of init, and everything the suite started stays pytest's descendant. At the end,
a descendant whose command line is one the suite starts, and which did not exist when the
session began, is a leftover. Other people's processes on the machine are never descendants.
"""

from __future__ import annotations

import ctypes
import os
import re
from dataclasses import dataclass

import psutil
import pytest

_PR_SET_CHILD_SUBREAPER = 36  # <linux/prctl.h>
LEFTOVER_GRACE_ENV = "SUITE_LEFTOVER_GRACE_S"
DEFAULT_LEFTOVER_GRACE_S = 15.0
KILLED_EXIT_TIMEOUT_S = 10.0
# What the suite starts: BentoML arbiters and workers, Redis, MLflow, Dagster, the Playwright
# driver and Chromium, PostgreSQL, uvicorn, the APScheduler runner, the Celery workers and moto.
STARTED_BY_THE_SUITE = re.compile(
    r"bentoml|_bentoml_impl|redis-server|mlflow|dagster|chrom|playwright|postgres|uvicorn"
    r"|pipelines\.scheduler|celery|moto"
)


@dataclass(frozen=True)
class Leftover:
    """A process still running at the end of the session."""

    pid: int
    ppid: int
    command: str

    def __str__(self) -> str:
        return f"pid {self.pid} (parent {self.ppid}): {self.command[:200]}"


@dataclass(frozen=True)
class SessionProcesses:
    """The process whose descendants are the session's, and those it already had at the start."""

    root_pid: int
    before: frozenset[tuple[int, float]]


def _identity(process: psutil.Process) -> tuple[int, float]:
    # (pid, start time): a PID recycled during the session is a new process.
    return process.pid, process.create_time()


def _descendants(root_pid: int) -> list[psutil.Process]:
    try:
        return psutil.Process(root_pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


def become_subreaper() -> None:
    """Make orphaned descendants of this process its children rather than init's."""
    libc = ctypes.CDLL(None, use_errno=True)
    if libc.prctl(_PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_CHILD_SUBREAPER) failed")


def begin(root_pid: int | None = None) -> SessionProcesses:
    """Watch the descendants of `root_pid` (this process, made a subreaper, by default)."""
    if root_pid is None:
        become_subreaper()
        root_pid = os.getpid()
    before = set()
    for process in _descendants(root_pid):
        try:
            before.add(_identity(process))
        except psutil.Error:
            continue
    return SessionProcesses(root_pid, frozenset(before))


def leftovers(session: SessionProcesses) -> list[psutil.Process]:
    """Descendants started during the session, matching what the suite starts, still running."""
    found = []
    for process in _descendants(session.root_pid):
        try:
            if (
                _identity(process) not in session.before
                and process.status() != psutil.STATUS_ZOMBIE
                and STARTED_BY_THE_SUITE.search(" ".join(process.cmdline()))
            ):
                found.append(process)
        except psutil.Error:
            continue
    return found


def describe(process: psutil.Process) -> Leftover | None:
    """What to report about `process` (None when it is already gone)."""
    try:
        return Leftover(process.pid, process.ppid(), " ".join(process.cmdline()))
    except psutil.Error:
        return None


def reap_zombie_children() -> None:
    """Collect adopted orphans that have exited (no one else waits for them)."""
    for child in psutil.Process().children():
        try:
            if child.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(child.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue


def finish(session: SessionProcesses, grace_s: float | None = None) -> list[Leftover]:
    """Leftovers still running after `grace_s`, described, then killed (they are the suite's).

    `grace_s` defaults to $SUITE_LEFTOVER_GRACE_S, else 15 s: time for a server still stopping
    to go on its own. tests/test_orphans.py's inner run leaks on purpose and needs none.
    """
    if grace_s is None:
        grace_s = float(os.environ.get(LEFTOVER_GRACE_ENV, DEFAULT_LEFTOVER_GRACE_S))
    _, alive = psutil.wait_procs(leftovers(session), timeout=grace_s)
    report = [entry for entry in map(describe, alive) if entry is not None]
    for process in alive:
        try:
            process.kill()
        except psutil.Error:
            continue
    # However short the grace, a killed process is waited for: its main thread turns zombie
    # first, but its sockets close only with its last thread (redis's background threads).
    psutil.wait_procs(alive, timeout=max(grace_s, KILLED_EXIT_TIMEOUT_S))
    reap_zombie_children()
    return report


@pytest.fixture(scope="session", autouse=True)
def no_process_left_running():
    """Fail the run if a server, broker or browser the suite started outlives it.

    Set up before every other fixture, torn down after all of them. tests/conftest.py imports it;
    under pytest-xdist every worker is a pytest process of its own and runs it for itself.
    """
    session = begin()
    yield
    left = finish(session)
    if left:
        pytest.fail(
            "processes the test session left running (now killed):\n" + "\n".join(map(str, left))
        )

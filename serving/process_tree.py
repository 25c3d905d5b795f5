"""Start-up and shutdown of a `bentoml serve` process tree, with proof that it is really gone.

BentoML's arbiter (circus) starts every worker with `setsid()`: each worker is in a session and
process group of its own. Killing the `bentoml serve` process group therefore kills only the
arbiter; the worker is re-parented to init and keeps answering on the port (BentoML binds with
SO_REUSEPORT, so a new server on the same port even starts "fine" beside it). `stop_tree` stops
the arbiter and every descendant, then checks that no process of the tree is left and that
nothing listens on the port any more. `wait_ready` waits for a server as long as it makes
progress (CPU time or log output) instead of guessing a wall-clock deadline.

Used by the tests (`tests/serving/conftest.py`) and the benchmarks (`bench/serve.py`).
"""

from __future__ import annotations

import logging
import os
import subprocess
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path

import psutil

logger = logging.getLogger(__name__)

# Checked once a second, these make "no progress": less CPU than this over the stall window and
# no byte of log output. A loaded 2-core machine still gives a starting server far more.
_MIN_CPU_PROGRESS_S = 1.0
# Summing a tree's CPU scans every process on the machine (~10 ms): once a second is enough for
# the stall check, while `ready()` is polled every `poll_s`.
_PROGRESS_CHECK_S = 1.0


class ServerStartError(RuntimeError):
    """The server exited, or stopped making progress, before it became ready."""


class TreeSurvivedError(RuntimeError):
    """Processes of a stopped tree are still running, or its port is still listened on."""


@dataclass(frozen=True)
class StoppedTree:
    """What `stop_tree` stopped."""

    pids: frozenset[int]
    returncode: int | None


@dataclass(frozen=True)
class Listener:
    """A listening TCP socket and its owner (None when the owner cannot be seen)."""

    pid: int | None
    address: str


def tree(pid: int) -> list[psutil.Process]:
    """The process `pid` and all its current descendants (empty when it is gone)."""
    try:
        root = psutil.Process(pid)
        return [root, *root.children(recursive=True)]
    except psutil.NoSuchProcess:
        return []


def running(processes: Iterable[psutil.Process]) -> list[psutil.Process]:
    """Those of `processes` still running (a zombie has stopped; a recycled PID is not ours)."""
    alive = []
    for process in processes:
        try:
            if process.is_running() and process.status() != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except psutil.NoSuchProcess:
            continue
    return alive


def port_listeners(port: int) -> list[Listener]:
    """TCP sockets listening on `port` (any address, any process)."""
    # psutil gives a socket without a local address an empty tuple (never a listener).
    return [
        Listener(connection.pid, f"{address.ip}:{address.port}")
        for connection in psutil.net_connections(kind="tcp")
        if (address := connection.laddr)
        and connection.status == psutil.CONN_LISTEN
        and address.port == port
    ]


def _wait_gone(processes: Iterable[psutil.Process], timeout_s: float) -> list[psutil.Process]:
    # A zombie counts as gone: it runs no more code, and init (or a subreaper) collects it.
    deadline = time.monotonic() + timeout_s
    alive = running(processes)
    while alive and time.monotonic() < deadline:
        time.sleep(0.1)
        alive = running(alive)
    return alive


def _wait_port_free(port: int, timeout_s: float) -> list[Listener]:
    # A killed process is a zombie as soon as its main thread exits, but its sockets close with
    # its last thread: a worker thread still leaving a disk write keeps the port a moment longer.
    deadline = time.monotonic() + timeout_s
    listeners = port_listeners(port)
    while listeners and time.monotonic() < deadline:
        time.sleep(0.1)
        listeners = port_listeners(port)
    return listeners


def _reap_adopted(processes: Iterable[psutil.Process]) -> None:
    # Under a child subreaper (the test session) killed orphans become our zombies: collect them.
    for process in processes:
        try:
            if process.ppid() == os.getpid() and process.status() == psutil.STATUS_ZOMBIE:
                os.waitpid(process.pid, os.WNOHANG)
        except (psutil.Error, ChildProcessError):
            continue


def _signal_all(
    processes: Iterable[psutil.Process], action: Callable[[psutil.Process], None]
) -> None:
    for process in processes:
        try:
            action(process)
        except psutil.NoSuchProcess:
            continue


def stop_tree(
    process: subprocess.Popen,
    *,
    kill: bool = False,
    port: int | None = None,
    known: Iterable[psutil.Process] = (),
    grace_s: float = 30.0,
) -> StoppedTree:
    """Stop `process` and every descendant; raise `TreeSurvivedError` if any survives.

    `kill` sends SIGKILL to every process at once (a crash); otherwise the root gets SIGTERM
    and `grace_s` to stop its workers, and whatever is left is killed. `known` adds processes
    seen earlier: once the root is dead its orphaned workers can no longer be found from it.
    When `port` is given, nothing may listen on it afterwards.
    """
    # Only an unreaped child's PID is safe to look up: a reaped one may belong to anyone now.
    root_alive = process.poll() is None
    if kill and root_alive:
        # Frozen first, so the arbiter cannot respawn the workers killed before it.
        _signal_all(tree(process.pid)[:1], psutil.Process.suspend)
    current = tree(process.pid) if root_alive else []
    members = {p.pid: p for p in [*running(known), *current]}
    if not kill and root_alive:
        process.terminate()  # the arbiter stops its workers itself
        try:
            process.wait(timeout=grace_s)
        except subprocess.TimeoutExpired:
            logger.warning("pid %d ignored SIGTERM for %.0f s: killing", process.pid, grace_s)
    _signal_all(running(members.values()), psutil.Process.kill)
    # Our own child is reaped here; the orphans are init's and only need to disappear.
    returncode = process.wait(timeout=grace_s)
    alive = _wait_gone(members.values(), grace_s)
    if alive:
        raise TreeSurvivedError(f"still running after SIGKILL: {[p.pid for p in alive]}")
    if port is not None and (listeners := _wait_port_free(port, grace_s)):
        raise TreeSurvivedError(f"port {port} still listened on: {listeners}")
    _reap_adopted(members.values())
    return StoppedTree(frozenset(members), returncode)


def tree_cpu_s(pid: int) -> float:
    """User + system CPU seconds of a process and its tree (BentoML's workers included)."""
    total = 0.0
    for process in tree(pid):
        try:
            times = process.cpu_times()
        except psutil.NoSuchProcess:
            continue
        total += times.user + times.system
    return total


def _size(path: Path | None) -> int:
    try:
        return path.stat().st_size if path is not None else 0
    except FileNotFoundError:
        return 0


def wait_ready(
    process: subprocess.Popen,
    ready: Callable[[], bool],
    log: Path | None = None,
    stall_s: float = 180.0,
    poll_s: float = 0.1,
) -> None:
    """Poll `ready()` until it is true; raise `ServerStartError` when the server cannot get there.

    There is no overall deadline: a loaded machine only makes start-up slower. The server fails
    when its process exits, or when for `stall_s` its tree has used under a second of CPU and
    `log` has not grown (a hang, not a slow start). `ready()` is called every `poll_s`, so it
    must be cheap: a probe that costs CPU takes it from the server it waits for.
    """
    last_cpu, last_size = tree_cpu_s(process.pid), _size(log)
    last_progress = last_check = time.monotonic()
    while not ready():
        if process.poll() is not None:
            raise ServerStartError(f"pid {process.pid} exited with {process.returncode}")
        if time.monotonic() - last_check >= _PROGRESS_CHECK_S:
            last_check = time.monotonic()
            cpu, size = tree_cpu_s(process.pid), _size(log)
            if cpu - last_cpu >= _MIN_CPU_PROGRESS_S or size != last_size:
                last_cpu, last_size, last_progress = cpu, size, last_check
            elif last_check - last_progress > stall_s:
                raise ServerStartError(f"pid {process.pid} made no progress for {stall_s:.0f} s")
        time.sleep(poll_s)

"""Where a benchmark's CPU goes: seconds per process group over a measured window.

A scaling ratio on a small machine says little without it: if one worker, the load generator,
PostgreSQL and Redis already keep every core busy, a second worker has no core to run on, and
the ratio measures the machine, not the service. `CpuWindow` snapshots each group's processes
(user + system seconds, by pid) and the machine's busy time at the start and the end of a
window; `CpuAccount` is the difference, with what no group claims counted as `other` (other
people's jobs on a shared machine).
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path

import psutil

# A group's processes, looked up again at the end of the window (backends come and go).
Finder = Callable[[], list[psutil.Process]]


def _cpu_s(process: psutil.Process) -> float | None:
    try:
        times = process.cpu_times()
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None
    # Not the reaped children's time: a group lists its live processes itself.
    return times.user + times.system


def _waited_s(process: psutil.Process) -> float:
    """Seconds the process's threads were runnable but waited for a core (Linux schedstat:
    on a machine with more runnable work than cores, this is what a process lost)."""
    total = 0
    for task in Path(f"/proc/{process.pid}/task").glob("*/schedstat"):
        try:
            total += int(task.read_text().split()[1])
        except (OSError, IndexError, ValueError):
            continue
    return total / 1e9


def _machine_busy_s() -> float:
    times = psutil.cpu_times()
    return sum(times) - times.idle - getattr(times, "iowait", 0.0)


def self_process() -> list[psutil.Process]:
    """This process (a load generator running in it)."""
    return [psutil.Process()]


def children_of(pid: int, keep: Callable[[psutil.Process], bool] = lambda _: True) -> Finder:
    """The descendants of `pid` that `keep` accepts."""

    def find() -> list[psutil.Process]:
        try:
            return [p for p in psutil.Process(pid).children(recursive=True) if keep(p)]
        except psutil.NoSuchProcess:
            return []

    return find


def only(pid: int) -> Finder:
    """The one process `pid`."""

    def find() -> list[psutil.Process]:
        try:
            return [psutil.Process(pid)]
        except psutil.NoSuchProcess:
            return []

    return find


def with_descendants(pid: int) -> Finder:
    """The process `pid` and every process it started (e.g. a worker and its log writer)."""
    return lambda: only(pid)() + children_of(pid)()


def postgres_cluster(data_dir: Path) -> Finder:
    """A PostgreSQL cluster's postmaster and every process it started (backends, writers)."""
    return with_descendants(int((data_dir / "postmaster.pid").read_text().split()[0]))


def by_command(name: str, needles: tuple[str, ...]) -> Finder:
    """Processes named `name` whose command line holds one of `needles` (e.g. a port)."""

    def find() -> list[psutil.Process]:
        found = []
        for process in psutil.process_iter(["name", "cmdline"]):
            cmdline = " ".join(process.info["cmdline"] or ())
            if process.info["name"] == name and any(n in cmdline for n in needles):
                found.append(process)
        return found

    return find


@dataclass(frozen=True)
class CpuAccount:
    """CPU seconds per group over one window, the machine's busy seconds and the window."""

    wall_s: float
    groups: dict[str, float]
    machine_busy_s: float
    waited: dict[str, float]  # per group: seconds runnable without a core (summed over threads)
    cores: int = field(default_factory=lambda: os.cpu_count() or 1)

    @property
    def other_s(self) -> float:
        """Busy time no group claims: other jobs on the machine (never below 0)."""
        return max(self.machine_busy_s - sum(self.groups.values()), 0.0)

    def cores_used(self, seconds: float) -> float:
        """CPU seconds as cores busy on average over the window."""
        return seconds / self.wall_s if self.wall_s else 0.0

    @property
    def machine_busy_fraction(self) -> float:
        """Share of all the machine's cores busy over the window."""
        return self.machine_busy_s / (self.wall_s * self.cores) if self.wall_s else 0.0


class CpuWindow:
    """Snapshot groups of processes now; `close()` returns what they used since."""

    def __init__(self, groups: Mapping[str, Finder]) -> None:
        self.groups = dict(groups)
        self.started = time.perf_counter()
        self.busy = _machine_busy_s()
        self.before = {name: self._snapshot(find) for name, find in self.groups.items()}

    @staticmethod
    def _snapshot(find: Finder) -> dict[int, tuple[float, float]]:
        seen = {}
        for process in find():
            if (cpu := _cpu_s(process)) is not None:
                seen[process.pid] = (cpu, _waited_s(process))
        return seen

    def close(self) -> CpuAccount:
        """Each group's CPU and waiting seconds since the start (a process born in the window:
        all of it)."""
        used, waited = {}, {}
        for name, find in self.groups.items():
            after, before = self._snapshot(find), self.before[name]
            used[name] = sum(
                cpu - before.get(pid, (0.0, 0.0))[0] for pid, (cpu, _) in after.items()
            )
            waited[name] = sum(w - before.get(pid, (0.0, 0.0))[1] for pid, (_, w) in after.items())
        wall = time.perf_counter() - self.started
        return CpuAccount(wall, used, _machine_busy_s() - self.busy, waited)


def sockets_on(pids: list[int], port: int) -> tuple[int, ...]:
    """Established connections each process holds on local `port` (how a server's workers
    share the clients: the kernel hands each new connection to one of them)."""
    counts = []
    for pid in pids:
        try:
            connections = psutil.Process(pid).net_connections(kind="tcp")
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            counts.append(0)
            continue
        counts.append(
            sum(c.status == psutil.CONN_ESTABLISHED and c.laddr.port == port for c in connections)
        )
    return tuple(counts)


class SocketSampler:
    """Samples `sockets_on` once a second in a thread; keeps the sample with the most sockets
    (the load's connections all open)."""

    def __init__(self, pids: list[int], port: int) -> None:
        self.pids, self.port = pids, port
        self.best: tuple[int, ...] = tuple(0 for _ in pids)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        while not self._stop.wait(1.0):
            sample = sockets_on(self.pids, self.port)
            if sum(sample) > sum(self.best):
                self.best = sample

    def __enter__(self) -> SocketSampler:
        self._thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        self._stop.set()
        self._thread.join()

"""Which process owns a run, written as tags so a later process can tell whether it died.

A process killed with SIGKILL cannot close its MLflow run or its Dagster run: both stay
RUNNING/STARTED for ever. Each run therefore carries the host, pid and start time of the process
that executes it; a later process on the same host can then prove the owner is gone (the pid
is free, or now belongs to a process started at another time) and close the run as failed.
"""

from __future__ import annotations

import socket
from collections.abc import Mapping
from dataclasses import dataclass
from enum import Enum

import psutil  # pinned in requirements.lock (a dependency of BentoML)

TAG_HOST = "supportloop/host"
TAG_PID = "supportloop/pid"
TAG_PROCESS_STARTED = "supportloop/process_started"
# psutil reports start times rounded to the clock tick; a reused pid starts seconds later.
START_TOLERANCE_S = 1.0


class Liveness(Enum):
    """What can be known about a run's owning process from here."""

    ALIVE = "alive"
    DEAD = "dead"
    UNKNOWN = "unknown"  # another host: only the run's age can tell


@dataclass(frozen=True)
class ProcessStamp:
    """Host, pid and start time of one process."""

    host: str
    pid: int
    started: float

    @classmethod
    def current(cls) -> ProcessStamp:
        """The stamp of this process."""
        process = psutil.Process()
        return cls(socket.gethostname(), process.pid, process.create_time())

    def to_tags(self) -> dict[str, str]:
        """Tags for an MLflow or Dagster run (both accept these keys)."""
        return {
            TAG_HOST: self.host,
            TAG_PID: str(self.pid),
            TAG_PROCESS_STARTED: f"{self.started:.3f}",
        }

    @classmethod
    def from_tags(cls, tags: Mapping[str, str]) -> ProcessStamp | None:
        """The stamp stored in `tags`, or None for runs written before stamps existed."""
        try:
            return cls(tags[TAG_HOST], int(tags[TAG_PID]), float(tags[TAG_PROCESS_STARTED]))
        except (KeyError, ValueError):
            return None

    def liveness(self) -> Liveness:
        """Whether the stamped process still runs (only knowable on its own host)."""
        if self.host != socket.gethostname():
            return Liveness.UNKNOWN
        return pid_liveness(
            self.pid, self.started - START_TOLERANCE_S, self.started + START_TOLERANCE_S
        )


def pid_liveness(pid: int, started_after: float, started_before: float) -> Liveness:
    """Whether a local process `pid` that started within the window still runs.

    A process with that pid that started outside the window is another one (the pid was
    reused): the one asked about is dead.
    """
    try:
        process = psutil.Process(pid)
        started, status = process.create_time(), process.status()
    except psutil.NoSuchProcess:
        return Liveness.DEAD
    except psutil.Error:  # e.g. access denied: it exists, we cannot look closer
        return Liveness.ALIVE
    if not started_after <= started <= started_before:
        return Liveness.DEAD
    # Killed but not yet reaped by its parent: it will never write again.
    return Liveness.DEAD if status == psutil.STATUS_ZOMBIE else Liveness.ALIVE

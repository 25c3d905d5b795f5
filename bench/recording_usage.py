"""What one turn of the recording-cost bench measures: wrk's throughput and the served tree's usage.

A turn is one wrk run against one server (or against both at the same moment). Beside wrk's
figures it records the user + system CPU seconds and context switches of the whole served
process tree (the `bentoml serve` arbiter, its worker and the prediction log's writer process),
read before the turn and SETTLE_S after it, and the worker's micro-batches in the turn (its
`/metrics` counters). Used by bench/recording_cost.py.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench.serve import run_wrk
from serving.process_tree import tree

# After a turn, the records still queued (under a batch) are written at the next flush interval
# (SERVING_RECORD_FLUSH_INTERVAL_S, 1 s): waiting it out charges their CPU to the turn that
# answered them. The off server waits as long, so an idle tree's CPU counts on both sides.
SETTLE_S = 1.5
WRITER_MODULE = "serving.prediction_log_writer"  # its command line: python -m WRITER_MODULE
# The micro-batcher's counters (serving/batcher.py): a turn's mean batch is items / batches. A
# worker's CPU per request falls as its batches grow, so a side that ran smaller batches pays
# more per request for that alone.
BATCH_COUNTERS = ("intent_model_batches_total", "intent_model_batched_items_total")


@dataclass(frozen=True)
class Usage:
    """What a process tree has used so far: CPU seconds and context switches."""

    user_s: float = 0.0
    system_s: float = 0.0
    voluntary: int = 0  # switches while waiting (a lock, the GIL, a socket)
    involuntary: int = 0  # preempted
    # Of user + system: the prediction log's writer processes' (where the worker's CPU ends).
    writer_s: float = 0.0

    def __sub__(self, other: Usage) -> Usage:
        return Usage(
            self.user_s - other.user_s,
            self.system_s - other.system_s,
            self.voluntary - other.voluntary,
            self.involuntary - other.involuntary,
            self.writer_s - other.writer_s,
        )

    def __add__(self, other: Usage) -> Usage:
        return Usage(
            self.user_s + other.user_s,
            self.system_s + other.system_s,
            self.voluntary + other.voluntary,
            self.involuntary + other.involuntary,
            self.writer_s + other.writer_s,
        )


def tree_usage(pid: int) -> Usage:
    """The usage of `pid` and every descendant (BentoML's arbiter, workers and writers)."""
    total = Usage()
    for process in tree(pid):
        try:
            with process.oneshot():
                times, switches = process.cpu_times(), process.num_ctx_switches()
                writer = WRITER_MODULE in process.cmdline()
        except psutil.NoSuchProcess:
            continue
        cpu_s = times.user + times.system
        total += Usage(
            times.user,
            times.system,
            switches.voluntary,
            switches.involuntary,
            cpu_s if writer else 0.0,
        )
    return total


def batch_counts(port: int) -> tuple[float, float]:
    """The server's micro-batches and the items classified in them so far (0, 0: unreadable)."""
    try:
        text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    except httpx.HTTPError:
        return 0.0, 0.0
    found = dict.fromkeys(BATCH_COUNTERS, 0.0)
    for line in text.splitlines():
        name, _, value = line.partition(" ")
        if name in found:
            found[name] += float(value)
    batches, items = found.values()
    return batches, items


@dataclass(frozen=True)
class Server:
    """A running server under test: its mode, `bentoml serve` process id and port."""

    mode: str
    pid: int
    port: int


@dataclass(frozen=True)
class Turn:
    """One wrk run against one server: what it answered and what its process tree spent."""

    mode: str
    connections: int
    rps: float
    requests: int
    usage: Usage
    failed: int
    load_1min: float
    batches: float = 0.0  # micro-batches the worker ran in the turn
    batched_items: float = 0.0
    block: int = 0  # the servers' start-up this turn ran under (bench/recording_cost.py)
    first: str = ""  # the mode of the server started (and launched by wrk) first in its block

    @property
    def cpu_s(self) -> float:
        """User + system CPU seconds of the served tree."""
        return self.usage.user_s + self.usage.system_s

    @property
    def cpu_us_per_request(self) -> float:
        """CPU microseconds of the served tree per request answered."""
        return self.cpu_s / max(self.requests, 1) * 1e6


def drive(servers: Sequence[Server], connections: int, duration: int, script: Path) -> list:
    """One wrk run against each of `servers` at the same moment, launched in the given order."""
    with ThreadPoolExecutor(len(servers)) as pool:
        runs = [
            pool.submit(
                run_wrk, f"http://127.0.0.1:{server.port}/predict", connections, duration, script
            )
            for server in servers
        ]
        return [run.result() for run in runs]


def measure(
    servers: Sequence[Server], connections: int, duration: int, script: Path, block: int, first: str
) -> list[Turn]:
    """One wrk run against each of `servers` at the same moment, with each tree's usage."""
    counted = [batch_counts(server.port) for server in servers]  # its CPU before the turn's
    before = [tree_usage(server.pid) for server in servers]
    loads = drive(servers, connections, duration, script)
    time.sleep(SETTLE_S)
    turns = []
    for server, load, used, (batches, items) in zip(servers, loads, before, counted, strict=True):
        usage = tree_usage(server.pid) - used
        batches_now, items_now = batch_counts(server.port)
        turns.append(
            Turn(
                server.mode,
                connections,
                load.rps,
                load.requests,
                usage,
                load.non_2xx + load.errors,
                os.getloadavg()[0],
                batches_now - batches,
                items_now - items,
                block,
                first,
            )
        )
    return turns

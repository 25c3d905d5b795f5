"""Cost of the prediction log (issue 12): the service with recording on against off, same run.

Both servers are up at once. By default every round drives both at the same moment (one wrk
each), so both meet the same host contention at the same time; `turns` measures one after the
other, the order mirrored every round (on, off, off, on, ...). Each run records wrk's throughput
and the CPU seconds (user + system) of the whole served process tree, the `bentoml serve`
arbiter and its workers, per request answered. On the shared 2-core KVM guest, a CPU second is
not a fixed amount of work: in turns, a round's CPU per request swung almost as much as its
throughput (±10-20 %); driven together, the on/off CPU ratio's quartiles were ±3 %
(bench/README.md, "Cost of the prediction log"). Per level the report gives the median of the
rounds' on/off ratios, their quartiles and extremes, for both measures.

Run by `bench/serve.py --recording-rounds N` (bench/README.md, "Cost of the prediction log").
"""

from __future__ import annotations

import os
import statistics
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import httpx
import psutil

from bench.serve import free_port, run_wrk, start, stop
from serving.process_tree import tree

MODES = {"on": "true", "off": "false"}
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

    @property
    def cpu_s(self) -> float:
        """User + system CPU seconds of the served tree."""
        return self.usage.user_s + self.usage.system_s

    @property
    def cpu_us_per_request(self) -> float:
        """CPU microseconds of the served tree per request answered."""
        return self.cpu_s / max(self.requests, 1) * 1e6


@dataclass(frozen=True)
class Spread:
    """Median, quartiles and extremes of per-round ratios."""

    median: float
    q1: float
    q3: float
    low: float
    high: float

    @classmethod
    def of(cls, ratios: Sequence[float]) -> Spread:
        """The spread of `ratios` (quartiles equal the median for fewer than two rounds)."""
        median = statistics.median(ratios)
        q1, _, q3 = statistics.quantiles(ratios, n=4) if len(ratios) > 1 else (median,) * 3
        return cls(median, q1, q3, min(ratios), max(ratios))

    def __str__(self) -> str:
        return (
            f"median {self.median:.3f}x (quartiles {self.q1:.3f}-{self.q3:.3f}, "
            f"range {self.low:.2f}-{self.high:.2f})"
        )


@dataclass(frozen=True)
class Server:
    """A running server under test: its mode, `bentoml serve` process id and port."""

    mode: str
    pid: int
    port: int


def measure(servers: Sequence[Server], connections: int, duration: int, script: Path) -> list[Turn]:
    """One wrk run against each of `servers` at the same moment, with each tree's usage."""
    counted = [batch_counts(server.port) for server in servers]  # its CPU before the turn's
    before = [tree_usage(server.pid) for server in servers]
    with ThreadPoolExecutor(len(servers)) as pool:
        runs = [
            pool.submit(
                run_wrk, f"http://127.0.0.1:{server.port}/predict", connections, duration, script
            )
            for server in servers
        ]
        loads = [run.result() for run in runs]
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
            )
        )
    return turns


def order(turn: int) -> list[str]:
    """on, off in even rounds, off, on in odd ones: neither always first, nor always second."""
    modes = list(MODES)
    return modes if turn % 2 == 0 else modes[::-1]


def recording_cost(
    command: Callable[[int], list[str]],
    env: dict[str, str],
    levels: list[int],
    duration: int,
    rounds: int,
    script: Path,
    together: bool = True,
    same: bool = False,
) -> list[Turn]:
    """Measure the two servers, together or in mirrored turns, and print the report.

    `same`: both servers with recording off (an A/A run: the spread the bench gives two equal
    servers, against which an on/off ratio is judged).
    """
    ports = {mode: free_port() for mode in MODES}
    processes = {}
    turns: list[Turn] = []
    try:
        for mode, value in MODES.items():
            settings = env | {"SERVING_RECORD_PREDICTIONS": MODES["off"] if same else value}
            processes[mode] = start(command(ports[mode]), ports[mode], settings, "/predict")
            run_wrk(f"http://127.0.0.1:{ports[mode]}/predict", 8, 2, script)  # warm up
        load_before = os.getloadavg()
        servers = {mode: Server(mode, processes[mode].pid, ports[mode]) for mode in MODES}
        for turn in range(rounds):
            for c in levels:
                if together:
                    turns += measure(list(servers.values()), c, duration, script)
                    continue
                for mode in order(turn):
                    turns += measure([servers[mode]], c, duration, script)
    finally:
        for mode, process in processes.items():
            stop(process, ports[mode])
    how = "driven together" if together else "in mirrored turns (on, off, off, on, ...)"
    if same:
        how += "; A/A: recording OFF on both sides ('on' is a second off server)"
    print_report(turns, levels, f"{rounds} rounds of {duration} s, {how}", load_before)
    return turns


def _pairs(turns: list[Turn], c: int) -> list[tuple[Turn, Turn]]:
    on = [t for t in turns if t.mode == "on" and t.connections == c]
    off = [t for t in turns if t.mode == "off" and t.connections == c]
    return list(zip(on, off, strict=True))


def print_report(
    turns: list[Turn], levels: list[int], what: str, load_before: tuple[float, float, float]
) -> None:
    """Per level: mean throughput and CPU per request of each side, and the rounds' ratios."""
    print(
        f"\nrecording on/off: {what}; "
        "load average (1, 5, 15 min) before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}; "
        "CPU: the served process tree, user + system".format(*load_before, *os.getloadavg())
    )
    for c in levels:
        pairs = _pairs(turns, c)
        on, off = [p[0] for p in pairs], [p[1] for p in pairs]
        rps_on, rps_off = (statistics.fmean(t.rps for t in side) for side in (on, off))
        # Pooled: the tree's CPU over all its turns divided by all the requests it answered.
        cpu_on, cpu_off = (
            sum(t.cpu_s for t in side) / sum(t.requests for t in side) * 1e6 for side in (on, off)
        )
        throughput = [a.rps / b.rps for a, b in pairs]
        cpu = [a.cpu_us_per_request / b.cpu_us_per_request for a, b in pairs]
        failed = sum(t.failed for t in on + off)
        loads = [t.load_1min for t in on + off]
        print(
            f"c={c}: req/s on {rps_on:,.0f}, off {rps_off:,.0f}; "
            f"CPU per request on {cpu_on:,.0f} us, off {cpu_off:,.0f} us "
            f"(pooled ratio {cpu_on / cpu_off:.3f}x); failed requests {failed}; "
            f"1-min load during the rounds {min(loads):.1f}-{max(loads):.1f}"
        )
        print(f"  per request, on / off: {_per_request(on)} / {_per_request(off)}")
        print(f"  mean micro-batch, on / off: {_mean_batch(on)} / {_mean_batch(off)}")
        print(f"  throughput on/off: {Spread.of(throughput)}")
        print(f"    rounds: {' '.join(f'{r:.2f}' for r in throughput)}")
        print(f"  CPU per request on/off: {Spread.of(cpu)}")
        print(f"    rounds: {' '.join(f'{r:.3f}' for r in cpu)}")
        print(
            "  a CPU-bound server would serve "
            f"{1 / Spread.of(cpu).median:.3f}x the requests with recording on (1 / median)"
        )


def _mean_batch(turns: list[Turn]) -> str:
    """Pooled mean micro-batch of some turns, and each turn's."""
    batches = sum(t.batches for t in turns)
    pooled = sum(t.batched_items for t in turns) / batches if batches else float("nan")
    each = " ".join(f"{t.batched_items / t.batches:.2f}" if t.batches else "-" for t in turns)
    return f"{pooled:.2f} ({each})"


def _per_request(turns: list[Turn]) -> str:
    """Pooled user and system CPU (us) and context switches per request of some turns."""
    usage = sum((t.usage for t in turns), Usage())
    requests = sum(t.requests for t in turns)
    return (
        f"user {usage.user_s / requests * 1e6:,.0f} us, sys {usage.system_s / requests * 1e6:,.0f}"
        f" us (writer {usage.writer_s / requests * 1e6:,.1f} us), "
        f"switches {usage.voluntary / requests:.2f} voluntary, "
        f"{usage.involuntary / requests:.2f} involuntary"
    )

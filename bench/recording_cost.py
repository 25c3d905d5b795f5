"""Cost of the prediction log (issue 12): the service with recording on against off, same run.

Both servers are up at once. By default every round drives both at the same moment (one wrk
each), so both meet the same host contention at the same time; `turns` measures one after the
other. Each turn records wrk's throughput and the CPU seconds of the whole served process tree
per request answered (bench/recording_usage.py).

Unbiased by construction: the rounds run in blocks, and each block starts both servers afresh,
the start order swapped from one block to the next (on first, then off first, ...), so neither
mode always has the older process, the lower port or the first warm-up. Both servers are warmed
up together, with the same requests, once both are up. Within a block the order in which the
two are launched (or measured, in turns) follows ABBA (first, second; second, first; second,
first; first, second). An A/A run (`same`: both servers recording off) reads what the bench
gives two equal servers; the report also gives the first-started / second-started ratio.

Run by `bench/serve.py --recording-rounds N [--recording-block K]` (bench/README.md, "Cost of
the prediction log" and the sections after it).
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.recording_report import print_report
from bench.recording_usage import Server, Turn, drive, measure
from bench.serve import free_port, start, stop

MODES = {"on": "true", "off": "false"}
WARM_UP = (8, 3)  # connections, seconds: both servers together, after both are up


@dataclass(frozen=True)
class Plan:
    """What to measure: the levels, each turn's length, the rounds and how they are grouped."""

    levels: list[int]
    duration: int
    rounds: int
    block_rounds: int  # rounds a start-up of both servers (0: half the rounds); order swaps
    together: bool = True  # both servers driven at the same moment (else one after the other)
    same: bool = False  # A/A: both servers with recording off


def start_order(block: int) -> list[str]:
    """on, off in even blocks; off, on in odd ones."""
    modes = list(MODES)
    return modes if block % 2 == 0 else modes[::-1]


def launch_order(first_started: list[str], round_in_block: int) -> list[str]:
    """ABBA within a block: the first-started server first in rounds 0 and 3 (mod 4)."""
    return first_started if round_in_block % 4 in (0, 3) else first_started[::-1]


def run_block(
    command: Callable[[int], list[str]],
    env: dict[str, str],
    plan: Plan,
    block: int,
    rounds: int,
    script: Path,
) -> list[Turn]:
    """Start both servers in this block's order, warm them up together, measure `rounds`."""
    order = start_order(block)
    ports = {mode: free_port() for mode in order}  # allocated in start order, too
    processes: dict[str, subprocess.Popen] = {}
    turns: list[Turn] = []
    try:
        for mode in order:
            settings = env | {"SERVING_RECORD_PREDICTIONS": MODES["off" if plan.same else mode]}
            processes[mode] = start(command(ports[mode]), ports[mode], settings, "/predict")
        servers = {mode: Server(mode, processes[mode].pid, ports[mode]) for mode in order}
        drive([servers[mode] for mode in order], WARM_UP[0], WARM_UP[1], script)
        for round_in_block in range(rounds):
            modes = launch_order(order, round_in_block)
            for c in plan.levels:
                if plan.together:
                    turns += measure(
                        [servers[m] for m in modes], c, plan.duration, script, block, order[0]
                    )
                    continue
                for mode in modes:
                    turns += measure([servers[mode]], c, plan.duration, script, block, order[0])
    finally:
        for mode, process in processes.items():
            stop(process, ports[mode])
    print(
        f"block {block}: {order[0]} started first, {rounds} rounds, done at "
        f"{time.strftime('%H:%M:%S', time.gmtime())} UTC, 1-min load {os.getloadavg()[0]:.2f}",
        flush=True,
    )
    return turns


def recording_cost(
    command: Callable[[int], list[str]], env: dict[str, str], plan: Plan, script: Path
) -> list[Turn]:
    """Measure the two servers in blocks of rounds and print the report."""
    load_before = os.getloadavg()
    turns: list[Turn] = []
    # Two blocks at least, so each mode is started first in one.
    size = plan.block_rounds if plan.block_rounds > 0 else max(1, -(-plan.rounds // 2))
    block, left = 0, plan.rounds
    while left > 0:
        rounds = min(size, left)
        turns += run_block(command, env, plan, block, rounds, script)
        block, left = block + 1, left - rounds
    how = "driven together" if plan.together else "in turns"
    how += f", {block} blocks of <= {size} rounds (start order swapped each block, ABBA)"
    if plan.same:
        how += "; A/A: recording OFF on both sides ('on' is a second off server)"
    print_report(
        turns, plan.levels, f"{plan.rounds} rounds of {plan.duration} s, {how}", load_before
    )
    return turns

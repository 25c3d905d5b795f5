"""bench/chat_scaling.py's records and its tables: rates, where the CPU went, the ceiling."""

from __future__ import annotations

import argparse
import os
from dataclasses import dataclass

from bench.cpu_accounting import CpuAccount
from bench.pg_waits import LockWaitStats


@dataclass(frozen=True)
class Round:
    """One worker count's measurement in one round."""

    round: int
    workers: int
    turns_per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    server_cpu_ms_per_turn: float
    load_average: float
    cpu: CpuShares
    lock_waits: LockWaitStats | None = None  # PostgreSQL sessions waiting on locks (means)


@dataclass(frozen=True)
class CpuShares:
    """Cores used on average over the measured window, by process group (bench/cpu_accounting)."""

    client: float
    workers: tuple[float, ...]
    arbiter: float
    postgres: float
    redis: float
    other: float
    machine_busy: float  # share of all the machine's cores
    # Cores' worth of time each worker was runnable but had no core (0: never starved).
    workers_waiting: tuple[float, ...] = ()
    sockets: tuple[int, ...] = ()  # the load's connections each worker held

    @classmethod
    def of(cls, account: CpuAccount, workers: list[str]) -> CpuShares:
        """`account` as cores; `workers`: the groups that are serve workers, in order."""

        def cores(name: str) -> float:
            return round(account.cores_used(account.groups.get(name, 0.0)), 2)

        return cls(
            cores("client"),
            tuple(cores(name) for name in workers),
            cores("arbiter"),
            cores("postgres"),
            cores("redis"),
            round(account.cores_used(account.other_s), 2),
            round(account.machine_busy_fraction, 3),
            tuple(round(account.cores_used(account.waited.get(name, 0.0)), 2) for name in workers),
        )

    def total(self) -> float:
        """Cores used by every group of the bench (not `other`)."""
        return self.client + sum(self.workers) + self.arbiter + self.postgres + self.redis


def print_table(rounds: list[Round], args: argparse.Namespace) -> None:
    """Markdown table, then each count's turns/s against one worker's, paired by round."""
    print(f"\nstore {args.store}, {args.customers} customers closed loop, {args.duration:g} s\n")
    print("| round | workers | turns/s | p50 ms | p99 ms | errors | server CPU ms/turn | load |")
    print("|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rounds:
        print(
            f"| {r.round} | {r.workers} | {r.turns_per_s} | {r.p50_ms} | {r.p99_ms} | "
            f"{r.errors} | {r.server_cpu_ms_per_turn} | {r.load_average} |"
        )
    base = min(r.workers for r in rounds)
    by_round: dict[int, dict[int, Round]] = {}
    for r in rounds:
        by_round.setdefault(r.round, {})[r.workers] = r
    for workers in sorted({r.workers for r in rounds} - {base}):
        ratios = [
            pair[workers].turns_per_s / pair[base].turns_per_s
            for pair in by_round.values()
            if workers in pair and base in pair and pair[base].turns_per_s
        ]
        if ratios:
            shown, mean = ", ".join(f"{x:.2f}" for x in ratios), sum(ratios) / len(ratios)
            print(f"{workers} workers / {base}: {mean:.2f}× turns/s (rounds: {shown})")
    print_cpu_table(rounds)


def print_cpu_table(rounds: list[Round]) -> None:
    """Cores each group used over the measured window, and what a turn cost in CPU."""
    print("\ncores used over the measured window (machine busy: share of all its cores)\n")
    print(
        "| round | workers | turns/s | client | each worker | arbiter | postgres | redis | other "
        "| machine busy | each worker waiting for a core | sockets per worker "
        "| turns per worker CPU-s | all CPU ms/turn |"
    )
    print("|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rounds:
        c = r.cpu
        per_worker_s = r.turns_per_s / sum(c.workers) if sum(c.workers) else 0.0
        all_ms = 1000 * c.total() / r.turns_per_s if r.turns_per_s else 0.0
        print(
            f"| {r.round} | {r.workers} | {r.turns_per_s} | {c.client} "
            f"| {' + '.join(map(str, c.workers))} | {c.arbiter} | {c.postgres} | {c.redis} "
            f"| {c.other} | {c.machine_busy:.0%} | {' + '.join(map(str, c.workers_waiting))} "
            f"| {' + '.join(map(str, c.sockets))} | {per_worker_s:.0f} | {all_ms:.1f} |"
        )
    print_ceiling(rounds)


def print_ceiling(rounds: list[Round]) -> None:
    """What the CPU per turn allows on this machine, whatever else runs: N workers reach at
    most min(N cores, all its cores) / (all CPU per turn) turns/s, and one worker, whose Python
    holds one core at a time (the GIL), about one core / (its CPU per turn). Their ratio caps
    the scaling the bench can show here."""
    cores = os.cpu_count() or 1
    for r in rounds:
        worker_s = sum(r.cpu.workers) / r.turns_per_s if r.turns_per_s else 0.0
        all_s = r.cpu.total() / r.turns_per_s if r.turns_per_s else 0.0
        if (w := r.lock_waits) is not None:
            print(
                f"round {r.round}, {r.workers} worker(s): PostgreSQL sessions waiting on an "
                f"advisory lock {w.advisory}, on any lock {w.any_lock}, active {w.active} "
                f"(means of {w.samples} samples)"
            )
        if r.workers < 2 or not worker_s or not all_s:
            continue
        ceiling = min(r.workers, cores) / all_s / (1 / worker_s)
        print(
            f"round {r.round}, {r.workers} workers: worker CPU {1000 * worker_s:.1f} ms of "
            f"{1000 * all_s:.1f} ms a turn; on {cores} cores at most {ceiling:.2f}× one "
            "saturated worker's turns/s"
        )

"""The recording-cost bench's report: on/off ratios per level, per block and by start position.

Per level: mean throughput and pooled CPU per request of each side, the median of the rounds'
on/off ratios with quartiles and extremes, each block's median (a block is one start-up of both
servers; the start order alternates between blocks), and the first-started / second-started
ratio, which reads the bench's position bias whatever the modes are. Used by
bench/recording_cost.py.
"""

from __future__ import annotations

import os
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

from bench.recording_usage import Turn, Usage


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


def pairs(turns: list[Turn], c: int) -> list[tuple[Turn, Turn]]:
    """The (on, off) turns of level `c`, round by round (each round measures both once)."""
    on = [t for t in turns if t.mode == "on" and t.connections == c]
    off = [t for t in turns if t.mode == "off" and t.connections == c]
    return list(zip(on, off, strict=True))


def print_report(
    turns: list[Turn], levels: list[int], what: str, load_before: tuple[float, float, float]
) -> None:
    """Per level: each side's means, the rounds' on/off ratios, per block and by position."""
    print(
        f"\nrecording on/off: {what}; "
        "load average (1, 5, 15 min) before {:.2f} {:.2f} {:.2f}, after {:.2f} {:.2f} {:.2f}; "
        "CPU: the served process tree, user + system".format(*load_before, *os.getloadavg())
    )
    for c in levels:
        print_level(pairs(turns, c), c)


def print_level(level: list[tuple[Turn, Turn]], c: int) -> None:
    """The report of one level's (on, off) pairs."""
    on, off = [p[0] for p in level], [p[1] for p in level]
    rps_on, rps_off = (statistics.fmean(t.rps for t in side) for side in (on, off))
    # Pooled: the tree's CPU over all its turns divided by all the requests it answered.
    cpu_on, cpu_off = (
        sum(t.cpu_s for t in side) / sum(t.requests for t in side) * 1e6 for side in (on, off)
    )
    throughput = [a.rps / b.rps for a, b in level]
    cpu = [a.cpu_us_per_request / b.cpu_us_per_request for a, b in level]
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
    print(f"    blocks (started first: median on/off): {_blocks(level)}")
    position = [a.rps / b.rps if a.first == "on" else b.rps / a.rps for a, b in level]
    print(f"  throughput started first / second (position bias): {Spread.of(position)}")
    print(f"  CPU per request on/off: {Spread.of(cpu)}")
    print(f"    rounds: {' '.join(f'{r:.3f}' for r in cpu)}")
    print(
        "  a CPU-bound server would serve "
        f"{1 / Spread.of(cpu).median:.3f}x the requests with recording on (1 / median)"
    )


def _blocks(level: list[tuple[Turn, Turn]]) -> str:
    """Each block's first-started mode and median throughput on/off."""
    blocks: dict[int, list[tuple[Turn, Turn]]] = {}
    for pair in level:
        blocks.setdefault(pair[0].block, []).append(pair)
    return "; ".join(
        f"{block} {pairs_[0][0].first} {statistics.median(a.rps / b.rps for a, b in pairs_):.3f}"
        for block, pairs_ in sorted(blocks.items())
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

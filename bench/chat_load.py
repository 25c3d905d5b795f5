"""The chat bench's load generator: customers on WebSockets, and what each of their turns took.

Used by bench/chat.py. Each customer holds one socket; a turn is a message sent and the bot's
reply received (or heartbeat → pong for the transport's baseline). Every turn is recorded with
when it started and whether it was the customer's first (which opens their support conversation),
so a run's slowest turns can be placed in time and told apart: the paced run's p99 is a handful of
turns out of ~1,000.
"""

from __future__ import annotations

import asyncio
import random
import secrets
import time
from dataclasses import dataclass, field

from serving.chat.auth import issue_token
from serving.chat.client import ChatClient

# Confident, calm questions: the bot answers them and never hands off.
TEXTS = (
    "I am still waiting on my card, when will it arrive?",
    "How do I top up my account with a bank transfer?",
    "What is the exchange rate for euros?",
    "How can I change my PIN?",
)
SLOWEST_KEPT = 12  # turns listed per run (the p99 of ~1,000 paced turns is the 10th slowest)


@dataclass(frozen=True)
class Turn:
    """One measured round trip."""

    customer: int
    nth: int  # the customer's turns before this one (0: their first, it opens a conversation)
    at_s: float  # when it started, seconds after the clock started
    wall: float  # the same moment, time.time() (to line up with the server's own logs)
    ms: float


@dataclass
class Result:
    """One measurement."""

    kind: str
    concurrency: int
    held: int
    round_trips: int
    per_s: float
    p50_ms: float
    p99_ms: float
    errors: int
    connect_s: float = 0.0
    cpu_ms_per_trip: float = 0.0  # server CPU (whole serve tree) per round trip
    # Closed-loop chat: each customer's first turn (it opens their support conversation) runs
    # before the clock starts, like the connecting; its latencies are reported apart.
    first_p50_ms: float = 0.0
    first_p99_ms: float = 0.0
    load_avg: float = 0.0  # the machine's 1-minute load average at the end (shared machine)
    # Round trips completed in the run's slowest whole second: the p99 target at 100 customers
    # needs the throughput held in every second, so a dip of the whole worker shows here.
    slowest_second: int = 0
    per_second: list[int] = field(default_factory=list)  # round trips completed in each second
    mean_group: float = 0.0  # write jobs per group commit, messages per model batch (the worker's
    mean_batch: float = 0.0  # counters over the run, bench/chat_counters.py)
    checkpoints: int = 0  # SQLite WAL checkpoints on their thread, the WAL's restarts, and
    checkpoint_ms: float = 0.0  # checkpoints the event loop ran itself (serving/chat/checkpoint.py)
    restarts: int = 0
    loop_checkpoints: int = 0
    loop_checkpoint_ms: float = 0.0
    slowest: list[Turn] = field(default_factory=list)  # the slowest turns, slowest first
    turns: list[Turn] = field(default_factory=list)  # every turn (paced runs only: ~1,000)


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values, in the same unit."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


@dataclass
class _Load:
    """The customers of one run and what they measured (the state they share)."""

    ws_url: str
    secret: str
    concurrency: int
    think_s: float
    echo: bool
    turns: list[Turn] = field(default_factory=list)
    first_turns: list[float] = field(default_factory=list)
    errors: int = 0
    connected: int = 0
    ready: asyncio.Event = field(default_factory=asyncio.Event)
    run_id: str = field(default_factory=lambda: secrets.token_hex(3))
    began: float = 0.0  # when the clock started (perf_counter)
    stop_at: float = float("inf")  # no customer stops before the clock has started

    async def customer(self, index: int) -> None:
        """Connect, wait for everyone, then take turns until the clock stops."""
        token = issue_token(self.secret, f"bench-{self.run_id}-{index}", "customer", 3600)
        async with ChatClient.connect(self.ws_url, token, max_queue=None) as client:
            nth = await self._first_turn(client, index)
            self.connected += 1
            if self.connected == self.concurrency:
                self.ready.set()
            await self.ready.wait()
            if self.think_s:  # customers arrive spread out, not all in the same second
                await asyncio.sleep(random.uniform(0, self.think_s))
            if not await self._turns(client, index, nth):
                return
            await client.send("heartbeat")
            await client.expect("pong", timeout=60)  # still held at the end

    async def _first_turn(self, client: ChatClient, index: int) -> int:
        """The closed loop's one-off first turn, off the clock; the customer's turns so far."""
        if self.echo or self.think_s:
            return 0
        started = time.perf_counter()
        await client.say(TEXTS[(index - 1) % len(TEXTS)])  # not the next one's text
        await client.expect("bot_reply", timeout=60)
        self.first_turns.append((time.perf_counter() - started) * 1000)
        return 1

    async def _turns(self, client: ChatClient, index: int, nth: int) -> bool:
        """Measured turns until the clock stops; False when the bot handed off (an error)."""
        n = index
        while time.perf_counter() < self.stop_at:
            wall, started = time.time(), time.perf_counter()
            if not await self._round_trip(client, n):
                self.errors += 1
                return False
            ms = (time.perf_counter() - started) * 1000
            self.turns.append(Turn(index, nth, started - self.began, wall, ms))
            n += 1
            nth += 1
            if self.think_s:
                await asyncio.sleep(self.think_s * random.uniform(0.5, 1.5))
        return True

    async def _round_trip(self, client: ChatClient, n: int) -> bool:
        """One turn: heartbeat → pong, or the n-th text → bot_reply (False: a handoff)."""
        if self.echo:
            await client.send("heartbeat")
            await client.expect("pong", timeout=60)
            return True
        await client.say(TEXTS[n % len(TEXTS)])
        reply = await client.expect("bot_reply", timeout=60)
        return reply.get("action") != "handoff"

    def result(self, seconds: float, elapsed: float, connect_s: float, failed: int) -> Result:
        """The run's measurement (`failed`: customers whose task raised)."""
        latencies = [turn.ms for turn in self.turns]
        per_second = per_second_counts([t.at_s + t.ms / 1000 for t in self.turns], seconds)
        first = self.first_turns
        return Result(
            ("ws heartbeat→pong" if self.echo else "chat send→bot_reply")
            + (f" (think {self.think_s:g} s)" if self.think_s else ""),
            self.concurrency,
            self.connected - failed,
            len(latencies),
            len(latencies) / elapsed,
            percentile(latencies, 50),
            percentile(latencies, 99),
            self.errors + failed,
            round(connect_s, 2),
            first_p50_ms=round(percentile(first, 50), 1) if first else 0.0,
            first_p99_ms=round(percentile(first, 99), 1) if first else 0.0,
            slowest_second=min(per_second),
            per_second=per_second,
            slowest=sorted(self.turns, key=lambda turn: -turn.ms)[:SLOWEST_KEPT],
            turns=self.turns if self.think_s else [],
        )


async def chat_load(
    ws_url: str,
    secret: str,
    concurrency: int,
    seconds: float,
    think_s: float = 0.0,
    echo: bool = False,
) -> Result:
    """`concurrency` customers connected at once, each sending and awaiting the bot's reply.

    In the closed loop each customer's first turn, which opens their support conversation,
    runs before the clock starts (its latencies are reported apart): p50 and p99 are of the
    steady state. Paced customers start their conversations during the run, as people do.

    With `think_s` each customer waits that long (±50%, so they do not march in step) between
    messages, like a person typing; without it the service runs flat out. With `echo` the
    round trip is heartbeat → pong: the same sockets, auth and server stack without the store
    and the model, i.e. the transport's ceiling (the baseline).
    """
    load = _Load(ws_url, secret, concurrency, think_s, echo)
    began_connect = time.perf_counter()
    tasks = [asyncio.create_task(load.customer(i)) for i in range(concurrency)]
    await asyncio.wait_for(load.ready.wait(), timeout=300)
    connect_s = time.perf_counter() - began_connect
    load.began = time.perf_counter()
    load.stop_at = load.began + seconds
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - load.began
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    return load.result(seconds, elapsed, connect_s, len(failed))


def per_second_counts(finished_s: list[float], seconds: float) -> list[int]:
    """Round trips completed in each whole second of the run (`finished_s`: after its start)."""
    counts = [0] * max(int(seconds), 1)
    for at in finished_s:
        index = int(at)
        if 0 <= index < len(counts):
            counts[index] += 1
    return counts


def describe_slowest(result: Result, count: int = 6) -> str:
    """The run's slowest turns: latency, when (s into the run) and the customer's turn number."""
    return ", ".join(
        f"{turn.ms:.0f} ms at {turn.at_s:.1f} s (turn {turn.nth})"
        for turn in result.slowest[:count]
    )

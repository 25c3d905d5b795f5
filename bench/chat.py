"""Chat-tier capacity: connections held and send → bot_reply round trips, against /predict.

Usage: python bench/chat.py [--customers 100,500] [--duration 20]
Needs a champion in the registry (`make pipeline`). One `bentoml serve` worker with a fresh SQLite
store; the load generator is one asyncio process on the same machine (loopback). The baseline,
measured in the same run at the same concurrency, is the HTTP `/predict` round trip: the ratio
says what the chat tier (auth, commit before ack, event log, fan-out, bot policy) costs on top
of classifying the message.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.serve import free_port, start, stop
from serving.chat.auth import issue_token
from serving.chat.client import ChatClient

REPO_ROOT = Path(__file__).resolve().parents[1]
# Confident, calm questions: the bot answers them and never hands off.
TEXTS = (
    "I am still waiting on my card, when will it arrive?",
    "How do I top up my account with a bank transfer?",
    "What is the exchange rate for euros?",
    "How can I change my PIN?",
)


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


def percentile(values: list[float], q: float) -> float:
    """The q-th percentile (0-100) of values, in the same unit."""
    if not values:
        return float("nan")
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


async def predict_load(base: str, concurrency: int, seconds: float) -> Result:
    """`concurrency` HTTP clients, each POSTing /predict back to back."""
    latencies: list[float] = []
    errors = 0
    deadline = time.perf_counter() + seconds
    limits = httpx.Limits(max_connections=concurrency, max_keepalive_connections=concurrency)
    async with httpx.AsyncClient(base_url=base, limits=limits, timeout=60) as client:

        async def worker(index: int) -> None:
            nonlocal errors
            n = index
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                response = await client.post("/predict", json={"text": TEXTS[n % len(TEXTS)]})
                if response.status_code == 200:
                    latencies.append((time.perf_counter() - started) * 1000)
                else:
                    errors += 1
                n += 1

        began = time.perf_counter()
        await asyncio.gather(*(worker(i) for i in range(concurrency)))
        elapsed = time.perf_counter() - began
    return Result(
        "http /predict",
        concurrency,
        concurrency,
        len(latencies),
        len(latencies) / elapsed,
        percentile(latencies, 50),
        percentile(latencies, 99),
        errors,
    )


async def chat_load(ws_url: str, secret: str, concurrency: int, seconds: float) -> Result:
    """`concurrency` customers connected at once, each sending and awaiting the bot's reply."""
    latencies: list[float] = []
    errors = 0
    ready = asyncio.Event()
    connected = 0
    run_id = secrets.token_hex(3)

    async def customer(index: int, stop_at: list[float]) -> None:
        nonlocal connected, errors
        user = f"bench-{run_id}-{index}"
        token = issue_token(secret, user, "customer", 3600)
        async with ChatClient.connect(ws_url, token, max_queue=None) as client:
            connected += 1
            if connected == concurrency:
                ready.set()
            await ready.wait()
            n = index
            while time.perf_counter() < stop_at[0]:
                started = time.perf_counter()
                await client.say(TEXTS[n % len(TEXTS)])
                reply = await client.expect("bot_reply", timeout=60)
                if reply.get("action") == "handoff":
                    errors += 1
                    return
                latencies.append((time.perf_counter() - started) * 1000)
                n += 1
            await client.send("heartbeat")
            await client.expect("pong", timeout=60)  # still held at the end

    stop_at = [float("inf")]
    began_connect = time.perf_counter()
    tasks = [asyncio.create_task(customer(i, stop_at)) for i in range(concurrency)]
    await asyncio.wait_for(ready.wait(), timeout=300)
    connect_s = time.perf_counter() - began_connect
    began = time.perf_counter()
    stop_at[0] = began + seconds
    outcomes = await asyncio.gather(*tasks, return_exceptions=True)
    elapsed = time.perf_counter() - began
    failed = [o for o in outcomes if isinstance(o, BaseException)]
    return Result(
        "chat send→bot_reply",
        concurrency,
        connected - len(failed),
        len(latencies),
        len(latencies) / elapsed,
        percentile(latencies, 50),
        percentile(latencies, 99),
        errors + len(failed),
        round(connect_s, 2),
    )


def server_rss_mb(pid: int) -> float:
    """Resident memory of a process group leader's children (the workers), in MB."""
    total = 0
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
            if os.getpgid(int(entry.name)) != pid:
                continue
        except (OSError, ProcessLookupError):
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1])
    return total / 1024


def main() -> None:
    """Start the service, measure both paths at each concurrency, print and save the table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", default="100,500")
    parser.add_argument("--duration", type=float, default=20)
    args = parser.parse_args()
    levels = [int(level) for level in args.customers.split(",")]
    secret = secrets.token_urlsafe(48)
    workdir = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    port = free_port()
    env = os.environ | {
        "SERVING_MLFLOW_TRACKING_URI": os.environ.get(
            "BENCH_MLFLOW_TRACKING_URI", f"sqlite:///{REPO_ROOT / '.mlflow' / 'mlflow.db'}"
        ),
        "SERVING_STORE_URL": f"sqlite:///{workdir / 'store.db'}",
        "CHAT_JWT_SECRET": secret,
        "CHAT_RATE_PER_S": "1000",
        "CHAT_RATE_BURST": "1000",
        "BENTOML_HOME": str(workdir / "bentoml"),
    }
    command = [str(Path(sys.executable).with_name("bentoml")), "serve"]
    command += ["serving.service:IntentService", "--port", str(port)]
    process = start(command, port, env, "/predict")
    results: list[Result] = []
    memory: dict[str, float] = {"idle_mb": round(server_rss_mb(process.pid), 1)}
    try:
        base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/chat/ws"
        asyncio.run(predict_load(base, 8, 3))  # warm-up
        for level in levels:
            results.append(asyncio.run(predict_load(base, level, args.duration)))
            results.append(asyncio.run(chat_load(ws_url, secret, level, args.duration)))
            memory[f"after_{level}_customers_mb"] = round(server_rss_mb(process.pid), 1)
    finally:
        stop(process)
    print_table(results, memory)
    out = REPO_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "chat.json").write_text(
        json.dumps({"results": [asdict(r) for r in results], "memory": memory}, indent=2)
    )


def print_table(results: list[Result], memory: dict[str, float]) -> None:
    """Markdown table with the chat/HTTP ratios."""
    print("| path | concurrent | held | round trips/s | p50 ms | p99 ms | errors | connect s |")
    print("|---|---|---|---|---|---|---|---|")
    for r in results:
        print(
            f"| {r.kind} | {r.concurrency} | {r.held} | {r.per_s:.1f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.errors} | {r.connect_s or '-'} |"
        )
    by_level: dict[int, dict[str, Result]] = {}
    for r in results:
        by_level.setdefault(r.concurrency, {})[r.kind.split()[0]] = r
    for level, pair in by_level.items():
        chat, http = pair["chat"], pair["http"]
        print(
            f"{level} concurrent: chat/HTTP throughput {chat.per_s / http.per_s:.2f}×, "
            f"p99 {chat.p99_ms / http.p99_ms:.2f}×"
        )
    print("server memory (MB):", memory)
    print(
        "median chat p50 ms:",
        statistics.median(r.p50_ms for r in results if r.kind != "http /predict"),
    )


if __name__ == "__main__":
    main()

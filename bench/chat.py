"""Chat-tier capacity: connections held and send → bot_reply round trips, against the transport.

Usage: python bench/chat.py [--customers 100,500] [--duration 20] [--py-spy OUT.txt]
Needs a champion in the registry (`make pipeline`). One `bentoml serve` worker with a fresh SQLite
store; the load generator is one asyncio process on the same machine (loopback). The baseline,
measured in the same run at the same concurrency, is the WebSocket heartbeat → pong round trip over
the same sockets and server stack: the ratio says what a bot turn (two commits before ack and
reply, the event log, the prediction, the bot policy) costs over the bare transport.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Coroutine
from dataclasses import asdict
from pathlib import Path
from typing import Any

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.chat_counters import counts_between, read_counters
from bench.chat_load import TEXTS, Result, chat_load, describe_slowest
from bench.chat_memory import held_kb, server_rss_mb
from bench.serve import free_port, start, stop
from serving.process_tree import tree, tree_cpu_s

REPO_ROOT = Path(__file__).resolve().parents[1]


def measured(process_pid: int, port: int, run: Coroutine[Any, Any, Result]) -> Result:
    """Run one load, adding the server's CPU per round trip, its counters and the load average."""
    counters = read_counters(port)
    cpu_before = tree_cpu_s(process_pid)
    result = asyncio.run(run)
    cpu_ms = (tree_cpu_s(process_pid) - cpu_before) * 1000
    counts = counts_between(counters, read_counters(port))
    result.mean_group, result.mean_batch = counts.mean_group, counts.mean_batch
    result.checkpoints, result.checkpoint_ms = counts.checkpoints, counts.checkpoint_ms
    result.restarts = counts.restarts
    result.loop_checkpoints, result.loop_checkpoint_ms = (
        counts.loop_checkpoints,
        counts.loop_checkpoint_ms,
    )
    result.cpu_ms_per_trip = round(cpu_ms / max(result.round_trips, 1), 2)
    result.load_avg = os.getloadavg()[0]
    return result


def worker_pid(process_pid: int) -> int:
    """The BentoML worker serving the chat (the serve process's busiest descendant)."""
    workers = [p for p in tree(process_pid)[1:] if "worker" in " ".join(p.cmdline())]
    return workers[0].pid if workers else process_pid


def start_py_spy(pid: int, out: Path, seconds: float) -> subprocess.Popen[bytes]:
    """Sample a worker for `seconds` with py-spy (`PY_SPY`, else on PATH); text report to `out`.

    `--gil`: only the thread holding the GIL, i.e. where the CPU goes. Flat `--format raw`
    (collapsed stacks) is what `bench/chat.py --py-spy` writes: count the
    frames of interest with grep, or load it into a flame-graph viewer.
    """
    binary = os.environ.get("PY_SPY") or shutil.which("py-spy") or "py-spy"
    command = [binary, "record", "--pid", str(pid), "--duration", str(int(seconds))]
    command += ["--rate", "200", "--format", "raw", "--gil", "--nonblocking", "--output", str(out)]
    return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--customers", default="100,500")
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument(
        "--paced", type=int, default=500, help="customers in the paced run (0: none)"
    )
    parser.add_argument("--think", type=float, default=20.0, help="seconds between messages")
    parser.add_argument(
        "--py-spy", type=Path, default=None, help="profile the worker during the first chat run"
    )
    return parser.parse_args()


def server_env(secret: str, workdir: Path) -> dict[str, str]:
    """The served worker's environment: the bench's registry, a fresh store, loose rate limits."""
    return dict(os.environ) | {
        "SERVING_MLFLOW_TRACKING_URI": os.environ.get(
            "BENCH_MLFLOW_TRACKING_URI", f"sqlite:///{REPO_ROOT / '.mlflow' / 'mlflow.db'}"
        ),
        "SERVING_STORE_URL": f"sqlite:///{workdir / 'store.db'}",
        "CHAT_JWT_SECRET": secret,
        "CHAT_RATE_PER_S": "1000",
        "CHAT_RATE_BURST": "1000",
        "BENTOML_HOME": str(workdir / "bentoml"),
    }


def run_loads(
    args: argparse.Namespace, pid: int, port: int, secret: str
) -> tuple[list[Result], dict[str, float]]:
    """Idle sockets' memory, then echo and chat at each level, then the paced run."""
    levels = [int(level) for level in args.customers.split(",")]
    results: list[Result] = []
    memory: dict[str, float] = {"idle_mb": round(server_rss_mb(pid), 1)}
    base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/chat/ws"
    httpx.post(f"{base}/predict", json={"text": TEXTS[0]}, timeout=30)  # warm-up
    # First, on a fresh worker: the most customers of the run holding idle sockets.
    most = max(levels)
    first_kb, more_kb = asyncio.run(held_kb(ws_url, secret, most, pid))
    memory[f"kb_per_held_connection_first_{most}"] = first_kb
    memory[f"kb_per_held_connection_{most}_more"] = more_kb
    for index, level in enumerate(levels):
        echo = chat_load(ws_url, secret, level, args.duration, echo=True)
        results.append(measured(pid, port, echo))
        profiler = None
        if args.py_spy and index == 0:
            seconds = args.duration + 2  # the customers connect within a second or two
            profiler = start_py_spy(worker_pid(pid), args.py_spy, seconds)
        chat = chat_load(ws_url, secret, level, args.duration)
        results.append(measured(pid, port, chat))
        if profiler is not None:
            profiler.wait(timeout=120)
        memory[f"after_{level}_customers_mb"] = round(server_rss_mb(pid), 1)
    if args.paced:
        duration = max(args.duration, 3 * args.think)
        paced = chat_load(ws_url, secret, args.paced, duration, args.think)
        results.append(measured(pid, port, paced))
    return results, memory


def main() -> None:
    """Start the service, measure both paths at each concurrency, print and save the table."""
    args = parse_args()
    secret = secrets.token_urlsafe(48)
    workdir = Path(tempfile.mkdtemp(prefix="bench-chat-"))
    port = free_port()
    command = [str(Path(sys.executable).with_name("bentoml")), "serve"]
    command += ["serving.service:IntentService", "--port", str(port)]
    process = start(command, port, server_env(secret, workdir), "/predict")
    try:
        results, memory = run_loads(args, process.pid, port, secret)
    finally:
        stop(process, port)
    print_table(results, memory)
    out = REPO_ROOT / "bench" / "results"
    out.mkdir(parents=True, exist_ok=True)
    (out / "chat.json").write_text(
        json.dumps({"results": [asdict(r) for r in results], "memory": memory}, indent=2)
    )


def print_table(results: list[Result], memory: dict[str, float]) -> None:
    """Markdown table with the chat/HTTP ratios."""
    print(
        "| path | concurrent | held | round trips/s | p50 ms | p99 ms | errors | connect s "
        "| server CPU ms/trip | load | first turn p50 / p99 ms | slowest second "
        "| mean group / batch | WAL: checkpoints (ms), restarts, on the loop (ms) |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in results:
        first = f"{r.first_p50_ms} / {r.first_p99_ms}" if r.first_p99_ms else "-"
        print(
            f"| {r.kind} | {r.concurrency} | {r.held} | {r.per_s:.1f} | {r.p50_ms:.1f} | "
            f"{r.p99_ms:.1f} | {r.errors} | {r.connect_s or '-'} | {r.cpu_ms_per_trip} | "
            f"{r.load_avg:.1f} | {first} | {r.slowest_second} | {r.mean_group} / "
            f"{r.mean_batch} | {r.checkpoints} ({r.checkpoint_ms}), {r.restarts}, "
            f"{r.loop_checkpoints} ({r.loop_checkpoint_ms}) |"
        )
    for r in results:
        if r.kind.startswith("chat"):
            print(f"{r.kind}, {r.concurrency} customers, slowest turns: {describe_slowest(r)}")
    by_level: dict[int, dict[str, Result]] = {}
    for r in results:
        if "think" not in r.kind:
            by_level.setdefault(r.concurrency, {})[r.kind.split()[0]] = r
    for level, pair in by_level.items():
        chat, echo = pair["chat"], pair["ws"]
        print(
            f"{level} concurrent: bot round trips/s {chat.per_s / echo.per_s:.3f}× of "
            f"heartbeat round trips; p99 {chat.p99_ms / echo.p99_ms:.1f}×"
        )
        # Little's law for a closed loop without think time: the mean wait is customers over
        # throughput, whatever the server does; a p99 below it is impossible.
        print(
            f"{level} concurrent: Little's law mean {1000 * level / chat.per_s:.1f} ms "
            f"(p50 {chat.p50_ms:.1f}, p99 {chat.p99_ms:.1f})"
        )
    print("server memory (MB):", memory)


if __name__ == "__main__":
    main()

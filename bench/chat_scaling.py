"""Chat tier scaling: bot turns/s with N `bentoml serve` workers sharing rooms through Redis.

Usage: python bench/chat_scaling.py [--store postgres|sqlite] [--workers 1,2] [--customers 100]
                                    [--duration 20] [--rounds 2]
Needs a champion in the registry (`make pipeline`; BENCH_MLFLOW_TRACKING_URI to use another).

Issue 10's target: with the store on PostgreSQL, two workers sustain ≥ 1.6× one worker's turns/s.
Each measurement gets a fresh database (one throwaway PostgreSQL, tests/postgres.py, or a SQLite
file) and the same Redis (`CHAT_BROKER_URL`, for one worker too). Worker counts alternate (1, 2,
1, 2, …); the ratio is the mean of each round's pair. The load generator (bench/chat.py's closed
loop) shares the machine. Printed beside the rates: the serve tree's CPU per turn, and how the
machine's CPU went over each window (bench/cpu_accounting.py: the load generator, each worker,
the arbiter, PostgreSQL, Redis, what else ran): when one worker's side keeps every core busy,
the ratio measures the machine, not the chat tier.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import sys
import tempfile
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager, nullcontext
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.chat import TEXTS, chat_load
from bench.chat_scaling_report import CpuShares, Round, print_table
from bench.cpu_accounting import (
    CpuWindow,
    Finder,
    SocketSampler,
    by_command,
    only,
    postgres_cluster,
    self_process,
    with_descendants,
)
from bench.pg_waits import LockWaits
from bench.serve import free_port, start, stop
from serving.process_tree import tree, tree_cpu_s
from tests.celery_workers import running_redis
from tests.postgres import PostgresServer, start_postgres

REPO_ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Stores:
    """Fresh store URLs, one per measurement, and the store server's processes (if any)."""

    urls: Iterator[str]
    server: Finder | None


@contextmanager
def store_urls(kind: str, workdir: Path) -> Iterator[Stores]:
    """Fresh store URLs, one per measurement: databases of one PostgreSQL, or SQLite files."""
    if kind == "sqlite":
        yield Stores((f"sqlite:///{workdir / f'store-{n}.db'}" for n in range(1_000)), None)
        return
    server: PostgresServer = start_postgres()
    try:
        urls = (server.create_database(f"chat_{n}") for n in range(1_000))
        yield Stores(urls, postgres_cluster(server.data_dir))
    finally:
        server.stop()


def cpu_groups(serve_pid: int, stores: Stores, broker: str) -> tuple[dict[str, Finder], list[str]]:
    """The processes to account for: this load generator, the arbiter, each worker (as they
    are when the window opens), the store server, Redis; and the worker groups' names."""
    port = broker.rsplit(":", 1)[1].split("/")[0]
    groups: dict[str, Finder] = {
        "client": self_process,
        "arbiter": only(serve_pid),
        "redis": by_command("redis-server", (f":{port}", f"--port {port}")),
    }
    if stores.server is not None:
        groups["postgres"] = stores.server
    workers = serve_workers(serve_pid)
    names = [f"worker {n}" for n in range(1, len(workers) + 1)]
    for name, pid in zip(names, workers, strict=True):  # with its prediction-log writer
        groups[name] = with_descendants(pid)
    return groups, names


def serve_workers(serve_pid: int) -> list[int]:
    """The arbiter's workers (its children; theirs, e.g. a log writer, are not workers)."""
    return [p.pid for p in tree(serve_pid)[1:] if p.ppid() == serve_pid]


def measure(
    workers: int, stores: Stores, broker_url: str, args: argparse.Namespace, round_: int
) -> Round:
    """Start `workers` serve workers on a fresh store, run the closed loop, stop them."""
    secret, port = secrets.token_urlsafe(48), free_port()
    env = os.environ | {
        "SERVING_MLFLOW_TRACKING_URI": os.environ.get(
            "BENCH_MLFLOW_TRACKING_URI", f"sqlite:///{REPO_ROOT / '.mlflow' / 'mlflow.db'}"
        ),
        "SERVING_STORE_URL": (store_url := next(stores.urls)),
        "SERVING_WORKERS": str(workers),
        "CHAT_BROKER_URL": broker_url,
        "CHAT_JWT_SECRET": secret,
        "CHAT_RATE_PER_S": "1000",
        "CHAT_RATE_BURST": "1000",
        # No customer leaves the closed loop: a handed-off one stops (an error), and a champion
        # that falls back on a bench text (the default one) handed them all off in a few turns.
        "CHAT_HANDOFF_AFTER_FALLBACKS": "1000000",
        "CHAT_FRUSTRATION_THRESHOLD": "1.0",
        "SERVING_RATE_LIMIT_PER_S": "100000",
        "BENTOML_HOME": str(args.workdir / f"bentoml-{round_}-{workers}"),
    }
    command = [str(Path(sys.executable).with_name("bentoml")), "serve"]
    command += ["serving.service:IntentService", "--port", str(port)]
    process = start(command, port, env, "/predict")
    try:
        base, ws_url = f"http://127.0.0.1:{port}", f"ws://127.0.0.1:{port}/chat/ws"
        for _ in range(4 * workers):  # warm every worker's model and store connections
            httpx.post(f"{base}/predict", json={"text": TEXTS[0]}, timeout=60)
        asyncio.run(chat_load(ws_url, secret, args.customers, 3.0))  # warm the chat path
        groups, worker_names = cpu_groups(process.pid, stores, broker_url)
        window = CpuWindow(groups)
        cpu_before = tree_cpu_s(process.pid)
        waits = LockWaits(store_url) if stores.server is not None else None
        with SocketSampler(serve_workers(process.pid), port) as sockets, waits or nullcontext():
            result = asyncio.run(chat_load(ws_url, secret, args.customers, args.duration))
        cpu = tree_cpu_s(process.pid) - cpu_before
        shares = replace(CpuShares.of(window.close(), worker_names), sockets=sockets.best)
    finally:
        stop(process, port)
    rates = (round(result.per_s, 1), round(result.p50_ms, 1), round(result.p99_ms, 1))
    cpu_ms = round(1000 * cpu / max(result.round_trips, 1), 1)
    load, lock_waits = round(os.getloadavg()[0], 1), waits.stats() if waits else None
    return Round(round_, workers, *rates, result.errors, cpu_ms, load, shares, lock_waits)


def main() -> None:
    """Alternate the worker counts over the rounds; print the table and the scaling ratios."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--store", choices=("postgres", "sqlite"), default="postgres")
    parser.add_argument("--workers", default="1,2")
    parser.add_argument("--customers", type=int, default=100)
    parser.add_argument("--duration", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    counts = [int(n) for n in args.workers.split(",")]
    rounds: list[Round] = []
    with ExitStack() as stack:  # everything under one temporary directory, removed at the end
        temporary = tempfile.TemporaryDirectory(prefix="bench-chat-scaling-")
        args.workdir = Path(stack.enter_context(temporary))
        broker_url = stack.enter_context(running_redis(args.workdir))
        stores = stack.enter_context(store_urls(args.store, args.workdir))
        for round_ in range(1, args.rounds + 1):
            for workers in counts:
                rounds.append(measure(workers, stores, broker_url, args, round_))
                print(rounds[-1], flush=True)
    print_table(rounds, args)
    out = REPO_ROOT / "bench" / "results" / f"chat_scaling_{args.store}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps([asdict(r) for r in rounds], indent=2))


if __name__ == "__main__":
    main()

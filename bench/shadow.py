"""What shadow scoring costs the answers: /predict with a challenger shadowed on a share of the
messages (SERVING_SHADOW_SHARE, `--shares`) against the same service with shadowing off.

Usage: python bench/shadow.py [--duration S] [--connections 1,8,32] [--rounds N] [--shares 0.1,1]
Needs Banking77 (BANKING77_DIR) and `wrk`. A scratch registry gets a champion and a challenger
(TF-IDF + logistic regression on two halves of Banking77's training set); every server runs one
worker on it and they are measured in turns (order reversed every round), so all see the same
background load. Each server's shadow scored and dropped counters are printed at the end.
"""

from __future__ import annotations

import argparse
import os
import re
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/shadow.py`

from bench.serve import BODY, PY, REPO_ROOT, Load, free_port, run_wrk, start, stop, wrk_script
from models.candidates import resolve
from models.registry import CHALLENGER, IntentRegistry, RegistryConfig
from models.splits import assign_splits
from models.tracking import log_and_register
from models.training import train_intent_model

SPLITS = ("train", "validation", "test")


def register(frame: pd.DataFrame, registry: IntentRegistry, artifacts: Path) -> str:
    """Train TF-IDF + logistic regression on `frame` (text, category) and register it."""
    data = frame.rename(columns={"category": "intent"}).assign(context="{}")
    data["split"] = assign_splits(data["text"].tolist(), data["intent"].tolist())
    train, validation, test = (data[data["split"] == name] for name in SPLITS)
    outcome = train_intent_model(resolve(["tfidf_logreg"]), train, validation, test)
    version = log_and_register(
        outcome,
        registry,
        "bench-shadow",
        str(artifacts),
        f"fp-{time.time_ns()}",
        {},
        {},
        reference=pd.concat([train, test]),
    )
    return str(version.version)


def scratch_registry(root: Path) -> str:
    """A registry with a champion and a challenger; its tracking URI."""
    # Two quick models: what is measured is serving, not training.
    os.environ.setdefault("TRAIN_SEARCH_TRIALS", "1")
    os.environ.setdefault("TRAIN_OOS_DRAWS", "0")
    folder = os.environ.get("BANKING77_DIR") or str(REPO_ROOT.parent / "shared/data/banking77")
    train = pd.read_csv(Path(folder) / "train.csv")
    halves = [train.iloc[0::2], train.iloc[1::2]]
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = IntentRegistry(RegistryConfig(uri))
    champion = register(halves[0].reset_index(drop=True), registry, root / "a")
    registry.promote(champion)
    registry.set_alias(CHALLENGER, register(halves[1].reset_index(drop=True), registry, root / "b"))
    return uri


def counter(port: int, name: str) -> float:
    """A counter of the server's /metrics (0 when absent)."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=30).text
    found = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--duration", type=int, default=10)
    parser.add_argument("--connections", default="1,8,32")
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--shares", default="0.1,1", help="SERVING_SHADOW_SHARE values to compare")
    return parser.parse_args()


@dataclass
class Servers:
    """One served worker per mode (its SERVING_SHADOW_SHARE) on the scratch registry."""

    uri: str
    root: Path
    modes: dict[str, str]
    ports: dict[str, int] = field(default_factory=dict)
    processes: dict[str, subprocess.Popen] = field(default_factory=dict)

    def url(self, mode: str) -> str:
        """The mode's /predict."""
        return f"http://127.0.0.1:{self.ports[mode]}/predict"

    def start(self, script: Path) -> None:
        """Start every mode's server and warm it up (stop() stops those started)."""
        bentoml = str(Path(PY).with_name("bentoml"))
        for mode, share in self.modes.items():
            env = os.environ | {
                "SERVING_MLFLOW_TRACKING_URI": self.uri,
                "SERVING_STORE_URL": f"sqlite:///{self.root / f'store-{mode}.db'}",
                "SERVING_POLL_INTERVAL_S": "0",
                "SERVING_SHADOW_SHARE": share,
                "CHAT_ENABLED": "false",
            }
            port = self.ports[mode] = free_port()
            command = [bentoml, "serve", "serving.service:IntentService", "--port", str(port)]
            self.processes[mode] = start(command, port, env, "/predict")
            run_wrk(self.url(mode), 8, 2, script)  # warm up

    def stop(self) -> None:
        """Stop every server started."""
        for mode, process in self.processes.items():
            stop(process, self.ports[mode])


def measure(
    servers: Servers, args: argparse.Namespace, levels: list[int], script: Path
) -> dict[tuple[str, int], list[Load]]:
    """Each mode at each concurrency, `args.rounds` times, the modes' order reversed each round."""
    loads: dict[tuple[str, int], list[Load]] = {}
    for turn in range(args.rounds):
        for c in levels:
            for mode in list(servers.modes)[:: 1 if turn % 2 == 0 else -1]:  # neither always first
                load = run_wrk(servers.url(mode), c, args.duration, script)
                loads.setdefault((mode, c), []).append(load)
    return loads


def print_comparison(
    modes: dict[str, str], levels: list[int], loads: dict[tuple[str, int], list[Load]]
) -> None:
    """Mean req/s (p50 / p99 ms) of each mode at each concurrency, as a markdown table."""
    print("| c | " + " | ".join(f"{mode}: req/s (p50 / p99 ms)" for mode in modes) + " |")
    print("|---:|" + "---:|" * len(modes))
    for c in levels:
        cells = []
        for mode in modes:
            runs = loads[(mode, c)]
            rps = sum(load.rps for load in runs) / len(runs)
            p50 = sum(load.p50_ms for load in runs) / len(runs)
            p99 = sum(load.p99_ms for load in runs) / len(runs)
            cells.append(f"{rps:,.0f} ({p50:.1f} / {p99:.1f})")
        print(f"| {c} | " + " | ".join(cells) + " |")


def main() -> None:
    """Measure both servers in turns at each concurrency and print the comparison."""
    args = parse_args()
    levels = [int(c) for c in args.connections.split(",")]
    root = Path(tempfile.mkdtemp(prefix="bench-shadow-"))
    modes = {"off": "0"} | {f"share {share}": share for share in args.shares.split(",")}
    servers = Servers(scratch_registry(root), root, modes)
    script = wrk_script(BODY)
    try:
        servers.start(script)
        loads = measure(servers, args, levels, script)
        time.sleep(2)  # the last shadow batches
        counted = {
            mode: (
                counter(port, "intent_shadow_scored_total"),
                counter(port, "intent_shadow_dropped_total"),
            )
            for mode, port in servers.ports.items()
        }
    finally:
        servers.stop()
    print(f"\nshadow scoring vs off, {args.rounds} alternating rounds of {args.duration} s")
    print_comparison(modes, levels, loads)
    for mode, (scored, dropped) in counted.items():
        print(f"{mode}: shadowed messages scored {scored:,.0f}, dropped {dropped:,.0f}")


if __name__ == "__main__":
    main()

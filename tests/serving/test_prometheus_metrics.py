"""Metrics through prometheus_client: nothing at import, one sum over a server's workers."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
from prometheus_client.multiprocess import MultiProcessCollector

from serving.metrics_dir import server_metrics_dir
from tests.serving.conftest import REPO_ROOT, ServiceProcess, service_env

DECLARING = (
    "serving.counters",
    "serving.prediction_log",
    "serving.batcher",
    "serving.shadow",
    "serving.chat.group_commit",
    "serving.chat.checkpoint",
)
# The names dashboards, bench/ and the docs read (one per declaring module at least).
NAMES = (
    "intent_fallbacks_total",
    "intent_model_swaps_total",
    "intent_prediction_log_queue_depth",
    "intent_prediction_log_dropped_total",
    "intent_model_batches_total",
    "intent_shadow_scored_total",
    "intent_shadow_queue_depth",
    "chat_commit_groups_total",
    "chat_wal_checkpoints_total",
)
IMPORT_THEN_CREATE = f"""
import json, os, sys, warnings
warnings.simplefilter("error", DeprecationWarning)
for module in {DECLARING!r}:
    __import__(module)
after_import = sorted(os.listdir(sys.argv[1])), "prometheus_client" in sys.modules
from serving.prometheus_metrics import create_declared
create_declared()
print(json.dumps([after_import, sorted(os.listdir(sys.argv[1]))]))
"""


def test_metrics_are_created_in_the_multiprocess_directory_only_when_asked(tmp_path: Path):
    done = subprocess.run(
        [sys.executable, "-c", IMPORT_THEN_CREATE, str(tmp_path)],
        cwd=REPO_ROOT,
        env=os.environ | {"PROMETHEUS_MULTIPROC_DIR": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert done.returncode == 0, done.stderr[-3000:]  # a DeprecationWarning fails it too
    (files_after_import, client_imported), files_after_create = json.loads(done.stdout)
    assert files_after_import == [] and client_imported is False
    pid = re.fullmatch(r"counter_(\d+)\.db", files_after_create[0])
    assert pid and f"gauge_livesum_{pid[1]}.db" in files_after_create
    exported = {
        metric.name
        for metric in MultiProcessCollector.merge([str(path) for path in tmp_path.iterdir()])
    }
    assert {name.removesuffix("_total") for name in NAMES} <= exported


def counted_per_file(directory: Path, name: str) -> dict[int, float]:
    """`name`'s sum over labels in each worker's counter file, by the worker's PID."""
    counts = {}
    for path in directory.glob("counter_*.db"):
        samples = [
            sample
            for metric in MultiProcessCollector.merge([str(path)])
            for sample in metric.samples
            if sample.name == name
        ]
        counts[int(path.stem.removeprefix("counter_"))] = sum(s.value for s in samples)
    return counts


def exported(server: ServiceProcess) -> dict[str, float]:
    """Every sample of /metrics summed over its labels, by name."""
    totals: dict[str, float] = {}
    text = httpx.get(f"{server.url}/metrics", timeout=30).text
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, value = re.sub(r"\{.*\}", "", line).rsplit(" ", 1)
            totals[name] = totals.get(name, 0.0) + float(value)
    return totals


def predict_on_new_connections(server: ServiceProcess, times: int) -> None:
    """`times` predictions at once, each on a connection of its own (the kernel spreads them)."""

    def one(_: int) -> int:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            return client.post("/predict", json={"text": "where is my card"}).status_code

    with ThreadPoolExecutor(max_workers=16) as pool:
        assert set(pool.map(one, range(times))) == {200}


@pytest.mark.slow
def test_two_workers_counters_add_up_in_metrics(serving_registry: dict) -> None:
    env = service_env(serving_registry, "two-worker-metrics.db", SERVING_WORKERS="2")
    server = ServiceProcess(env)
    server.start()
    try:
        before = exported(server)
        assert all(name in before for name in NAMES)  # created at start-up, at 0
        directory = server_metrics_dir(env, server.process.pid)  # type: ignore[union-attr]
        sent = 0
        # Until both workers answered some (the kernel decides; 32 at once nearly always do).
        while sent < 320:
            predict_on_new_connections(server, 32)
            sent += 32
            per_worker = counted_per_file(directory, "intent_predictions_total")
            if sum(count > 0 for count in per_worker.values()) == 2:
                break
        answering = {pid for pid, count in per_worker.items() if count > 0}
        assert len(answering) == 2 and answering <= server.pids
        after = exported(server)
        counted = after["intent_predictions_total"] - before.get("intent_predictions_total", 0)
        assert counted == sent == sum(per_worker.values())
    finally:
        server.stop()

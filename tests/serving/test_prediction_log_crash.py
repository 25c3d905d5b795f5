"""A SIGKILL of the whole `bentoml serve` tree loses only what the prediction log had not flushed.

A real server records N predictions; once its flusher has committed them, a monitoring run's
window counts them with the serving version. Then a few more predictions (fewer than a batch,
so only the flush interval would write them) are answered and the whole tree is SIGKILLed: the
crash is checked (every PID gone, the port free), and the store, opened afterwards, still holds
every committed row; what is lost is exactly the tail queued since the last commit, within the
documented bound (serving/README.md, "Prediction log").
"""

from __future__ import annotations

import sqlite3
import time
from datetime import UTC, datetime, timedelta

import httpx
import psutil
import pytest

from monitoring.data import read_current
from monitoring.window import Window
from serving.process_tree import port_listeners, tree
from tests.serving.conftest import ServiceProcess, service_env
from tests.serving.test_prediction_log import http_rows

pytestmark = pytest.mark.slow

BATCH = 20  # SERVING_RECORD_BATCH_SIZE: a full batch wakes the flusher at once
COMMITTED = 2 * BATCH  # answered, then waited for until the store has them
TAIL = BATCH - 1  # answered just before the kill: below a batch, waiting for the interval
# Long enough that the tail cannot be flushed by the timer before the kill.
FLUSH_INTERVAL_S = 60  # the largest SERVING_RECORD_FLUSH_INTERVAL_S allows


def predict(service: ServiceProcess, text: str) -> str:
    answer = httpx.post(f"{service.url}/predict", json={"text": text}, timeout=60)
    assert answer.status_code == 200, answer.text
    return str(answer.json()["model"]["version"])


def wait_for_rows(service: ServiceProcess, count: int, timeout_s: float = 60) -> list[dict]:
    deadline = time.monotonic() + timeout_s
    while len(rows := http_rows(service)) < count and time.monotonic() < deadline:
        time.sleep(0.2)
    return rows


def test_a_sigkill_of_the_serve_tree_loses_only_the_unflushed_tail(serving_registry):
    service = ServiceProcess(
        service_env(
            serving_registry,
            "log-crash.db",
            SERVING_RECORD_BATCH_SIZE=str(BATCH),
            SERVING_RECORD_QUEUE_SIZE="1000",
            SERVING_RECORD_FLUSH_INTERVAL_S=str(FLUSH_INTERVAL_S),
            SERVING_SHADOW_SHARE="0",
        )
    )
    service.start()
    texts = [f"my card number {n} has not arrived yet" for n in range(COMMITTED + TAIL)]
    try:
        started = datetime.now(UTC)
        versions = {predict(service, text) for text in texts[:COMMITTED]}
        committed = wait_for_rows(service, COMMITTED)
        for text in texts[COMMITTED:]:
            versions.add(predict(service, text))
        before_kill = http_rows(service)
        served_pids = service.pids
        assert service.process is not None
        writers = {
            process.pid
            for process in tree(service.process.pid)
            if "serving.prediction_log_writer" in process.cmdline()
        }
    finally:
        stopped = service.stop(kill=True)

    # The crash happened: every process of the tree is gone and nothing listens on the port.
    assert stopped is not None and served_pids <= stopped.pids
    assert writers and writers <= stopped.pids  # the worker's writer process died with it
    assert not [pid for pid in stopped.pids if psutil.pid_exists(pid)]
    assert not port_listeners(service.port)

    # Before the kill: the two full batches were committed with the version that answered them.
    version = str(serving_registry["first_version"])
    assert versions == {version}
    assert [row["text"] for row in committed] == texts[:COMMITTED]
    assert {row["model_version"] for row in committed} == {version}
    window = Window(started - timedelta(seconds=1), datetime.now(UTC) + timedelta(seconds=1))
    counted = read_current(service.env["SERVING_STORE_URL"], window).messages
    assert int((counted["channel"] == "http").sum()) == COMMITTED

    # After the kill: the store opens intact and every committed row is still there.
    store = service.env["SERVING_STORE_URL"].removeprefix("sqlite:///")
    with sqlite3.connect(store) as connection:
        assert connection.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    after = [row["text"] for row in http_rows(service)]
    assert [row["text"] for row in before_kill] == after[: len(before_kill)]
    assert after == texts[: len(after)]  # only a tail is lost, in the order it was queued
    lost = len(texts) - len(after)
    # The bound documented in serving/README.md: what was queued since the last commit, here the
    # tail, below a batch, which only the flush interval would have written.
    assert after == texts[:COMMITTED] and lost == TAIL < BATCH

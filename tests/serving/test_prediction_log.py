"""Every /predict and /batch_predict answer of a real `bentoml serve` is recorded in the store."""

from __future__ import annotations

import contextlib
import hashlib
import re
import sqlite3
import time

import httpx
import pytest
import sqlalchemy as sa

from conversations import store_engine, tables
from tests.serving.conftest import ServiceProcess, service_env

pytestmark = pytest.mark.slow


def post(service: ServiceProcess, path: str, body: object) -> httpx.Response:
    return httpx.post(f"{service.url}{path}", json=body, timeout=60)


def http_rows(service: ServiceProcess) -> list[dict]:
    engine = store_engine.create_engine(service.env["SERVING_STORE_URL"])
    predictions = tables.predictions
    with engine.connect() as connection:
        rows = connection.execute(
            sa.select(predictions)
            .where(predictions.c.channel == "http")
            .order_by(predictions.c.prediction_id)
        )
        found = [dict(row) for row in rows.mappings()]
    engine.dispose()
    return found


def metric(service: ServiceProcess, name: str) -> float:
    text = httpx.get(f"{service.url}/metrics", timeout=30).text
    found = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def started(serving_registry, store: str, **settings: str) -> ServiceProcess:
    process = ServiceProcess(service_env(serving_registry, store, **settings))
    process.start()
    return process


def test_predict_and_batch_predict_are_recorded_and_a_clean_stop_flushes(serving_registry):
    # A flush interval longer than the test: the rows can only come from the flush at stop.
    service = started(
        serving_registry,
        "log-full.db",
        SERVING_RECORD_FLUSH_INTERVAL_S="60",
        SERVING_RECORD_BATCH_SIZE="1000",
    )
    try:
        single = [
            post(service, "/predict", {"text": text, "user_id": "u-7", "session_id": "s-7"})
            for text in ("my card has not arrived", "I want a refund", "hello")
        ]
        items = [{"text": f"how do I top up {n}"} for n in range(4)]
        batch = post(service, "/batch_predict", {"items": items})
    finally:
        service.stop()  # SIGTERM: the service's shutdown writes what is queued
    assert all(answer.status_code == 200 for answer in [*single, batch])
    rows = http_rows(service)
    assert len(rows) == 7, rows
    version = str(serving_registry["first_version"])
    assert {row["model_version"] for row in rows} == {version}
    assert [row["text"] for row in rows[:3]] == [
        "my card has not arrived",
        "I want a refund",
        "hello",
    ]
    assert [row["intent"] for row in rows[:3]] == [a.json()["intent"] for a in single]
    assert all(row["latency_ms"] > 0 and row["text_sha256"] is None for row in rows)
    assert {(row["user_id"], row["session_id"]) for row in rows[:3]} == {("u-7", "s-7")}
    assert {row["text"] for row in rows[3:]} == {item["text"] for item in items}


def test_hash_mode_stores_the_digest_never_the_text(serving_registry):
    service = started(
        serving_registry,
        "log-hash.db",
        SERVING_RECORD_TEXT="hash",
        SERVING_RECORD_FLUSH_INTERVAL_S="0.2",
    )
    try:
        text = "my PIN is blocked, account 12345678"
        assert post(service, "/predict", {"text": text}).status_code == 200
        deadline = time.monotonic() + 30
        while not (rows := http_rows(service)) and time.monotonic() < deadline:
            time.sleep(0.2)  # the background flush, while the server runs
        assert metric(service, "intent_prediction_log_recorded_total") == 1
    finally:
        service.stop()
    assert len(rows) == 1
    assert rows[0]["text"] is None
    assert rows[0]["text_sha256"] == hashlib.sha256(text.encode()).hexdigest()
    store = service.env["SERVING_STORE_URL"].removeprefix("sqlite:///")
    for path in (store, f"{store}-wal"):  # the digits are nowhere in the store's files
        with contextlib.suppress(FileNotFoundError), open(path, "rb") as raw:
            assert b"12345678" not in raw.read()


def test_a_full_queue_drops_and_counts_and_never_blocks_a_request(serving_registry):
    service = started(
        serving_registry,
        "log-locked.db",
        SERVING_RECORD_QUEUE_SIZE="3",
        SERVING_RECORD_BATCH_SIZE="2",
        SERVING_RECORD_FLUSH_INTERVAL_S="0.2",
    )
    store = service.env["SERVING_STORE_URL"].removeprefix("sqlite:///")
    lock = sqlite3.connect(store, timeout=30, isolation_level=None)
    try:
        lock.execute("BEGIN IMMEDIATE")  # the store's write lock, held by the test
        answers = [post(service, "/predict", {"text": f"lost card {n}"}) for n in range(12)]
        dropped = metric(service, "intent_prediction_log_dropped_total")
        depth = metric(service, "intent_prediction_log_queue_depth")
        lock.execute("ROLLBACK")
    finally:
        lock.close()
        service.stop()
    assert [a.status_code for a in answers] == [200] * 12
    # At most the queue (3) and one batch being written (2) are held; the rest is dropped.
    assert dropped >= 12 - 3 - 2 and depth <= 3
    # Once the store is free again, what was held is written (at the latest by the clean stop).
    assert 3 <= len(http_rows(service)) <= 3 + 2

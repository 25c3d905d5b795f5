"""The prediction log's writer process: the worker only sends batches, the writer does the store.

A real event loop, a real writer process (serving/prediction_log_writer.py) and a real SQLite
file. The store is locked by the test (another process's write lock) to hold batches in flight.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sqlite3
import subprocess
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import psutil
import sqlalchemy as sa
from prometheus_client import REGISTRY

from conversations import store_engine, tables
from models.predictions import ModelDocument, PredictionDocument
from serving.prediction_log import LogPolicy, PredictionLog
from serving.prediction_log_writer import STORE_URL_ENV, encode
from serving.settings import RecordText

MODEL: ModelDocument = {"name": "intent-classifier", "version": "3"}
# Longer than any test: only the test's own drain_once sends.
NEVER_S = 60.0
# A guard against a hang, not a timing assertion.
GUARD_S = 60.0


def answer(intent: str) -> PredictionDocument:
    return {
        "intent": intent,
        "confidence": 0.9,
        "fallback": False,
        "top_k": [],
        "sentiment": {"polarity": 0.1, "subjectivity": 0.2},
    }


def counted(name: str) -> float:
    return REGISTRY.get_sample_value(f"intent_prediction_log_{name}_total") or 0.0


def stored(url: str) -> list[tuple[str, str, str]]:
    engine = store_engine.create_engine(url)
    predictions = tables.predictions
    with engine.connect() as connection:
        query = sa.select(
            predictions.c.intent, predictions.c.model_version, predictions.c.channel
        ).order_by(predictions.c.prediction_id)
        rows = [tuple(row) for row in connection.execute(query)]
    engine.dispose()
    return rows


def new_log(
    tmp_path: Path, queue_size: int = 100, batch_size: int = 50
) -> tuple[PredictionLog, str]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return PredictionLog(url, LogPolicy(RecordText.FULL, queue_size, batch_size, NEVER_S)), url


def lock(url: str) -> sqlite3.Connection:
    """Another process's write lock on the store, held until the caller rolls back."""
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    return holder


async def until(condition: Callable[[], bool]) -> None:
    while not condition():
        await asyncio.sleep(0.02)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    asyncio.run(asyncio.wait_for(scenario(), GUARD_S))


def test_batches_are_written_in_order_by_a_child_process_not_the_worker(
    sqlite_or_postgres_url: str,
) -> None:
    url = sqlite_or_postgres_url  # the store is chosen by its URL, the writer's too
    log = PredictionLog(url, LogPolicy(RecordText.FULL, 100, 50, NEVER_S))
    recorded = counted("recorded")
    seen: dict[str, int | None] = {}

    async def scenario() -> None:
        log.record(["lost card", "refund"], [answer("lost_card"), answer("refund")], MODEL, 3.0)
        assert await log.drain_once()
        log.record(["top up"], [answer("top_up")], MODEL, 3.0)
        assert await log.drain_once()
        seen["writer"] = log.writer_pid
        await until(lambda: log.depth == 0)  # answered by the writer: written
        await log.on_close()

    run(scenario)
    assert stored(url) == [(i, "3", "http") for i in ("lost_card", "refund", "top_up")]
    assert counted("recorded") - recorded == 3
    writer = seen["writer"]
    assert writer is not None and writer != os.getpid()
    assert not psutil.pid_exists(writer)  # a clean stop ends the writer too


def test_a_locked_store_holds_batches_in_flight_and_the_bound_drops_the_rest(
    tmp_path: Path,
) -> None:
    log, url = new_log(tmp_path, queue_size=5, batch_size=2)
    holder = lock(url)
    dropped = counted("dropped")
    accepted: list[bool] = []

    async def scenario() -> None:
        log.record(["a", "b"], [answer("a"), answer("b")], MODEL, 3.0)
        assert await log.drain_once()  # sent: the writer waits for the lock, not the loop
        assert log.depth == 2 and stored(url) == []
        for n in range(10):  # what is in flight counts against the bound
            accepted.append(
                log.offer_record(
                    (
                        "t",
                        f"i{n}",
                        0.9,
                        False,
                        "m",
                        "3",
                        None,
                        None,
                        1.0,
                        0.0,
                        None,
                        None,
                        "served",
                        None,
                    )
                )
            )
        assert log.depth == 5
        holder.execute("ROLLBACK")
        await until(lambda: log.depth == 3)  # the first batch written once the lock is free
        await log.on_close()  # a clean stop writes the rest

    try:
        run(scenario)
    finally:
        holder.close()
    assert accepted == [True] * 3 + [False] * 7
    assert counted("dropped") - dropped == 7
    assert [intent for intent, _, _ in stored(url)] == ["a", "b", "i0", "i1", "i2"]


def test_a_writer_that_dies_loses_only_what_it_held_and_the_next_flush_starts_another(
    tmp_path: Path,
) -> None:
    log, url = new_log(tmp_path)
    holder = lock(url)
    dropped = counted("dropped")
    writers: list[int | None] = []

    async def scenario() -> None:
        log.record(["a", "b"], [answer("a"), answer("b")], MODEL, 3.0)
        assert await log.drain_once()
        first = log.writer_pid
        assert first is not None
        writers.append(first)
        os.kill(first, signal.SIGKILL)  # while it waits for the lock with both records
        await until(lambda: log.writer_pid is None)
        assert log.depth == 0  # its two records are counted dropped, not waited for
        holder.execute("ROLLBACK")
        log.record(["c"], [answer("c")], MODEL, 3.0)  # the request path goes on
        assert await log.drain_once()
        writers.append(log.writer_pid)
        await until(lambda: log.depth == 0)
        await log.on_close()

    try:
        run(scenario)
    finally:
        holder.close()
    assert counted("dropped") - dropped == 2
    assert writers[1] is not None and writers[1] != writers[0]
    assert [intent for intent, _, _ in stored(url)] == ["c"]


def test_when_its_stdin_ends_the_writer_writes_what_the_pipe_held_and_exits(tmp_path: Path) -> None:
    # What a SIGKILL of the worker alone leaves: frames in the pipe, nobody reading the answers.
    url = f"sqlite:///{tmp_path / 'store.db'}"
    PredictionLog(url, LogPolicy(RecordText.HASH, 10, 10, NEVER_S))  # creates the schema
    frames = [
        encode(
            [
                (
                    f"text {n}",
                    f"i{n}",
                    0.5,
                    True,
                    "m",
                    7,
                    None,
                    None,
                    2.0,
                    0.0,
                    "u",
                    None,
                    "served",
                    None,
                )
            ]
        )
        for n in range(3)
    ]
    writer = subprocess.Popen(
        [sys.executable, "-m", "serving.prediction_log_writer", "hash"],
        stdin=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        env=os.environ | {STORE_URL_ENV: url},
    )
    assert writer.stdin is not None
    writer.stdin.write(b"".join(frames))
    writer.stdin.close()
    assert writer.wait(timeout=GUARD_S) == 0
    assert stored(url) == [(f"i{n}", "7", "http") for n in range(3)]

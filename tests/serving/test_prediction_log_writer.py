"""Where the prediction log writes a batch on SQLite: on the event loop, unless the store is locked.

A real loop and a real SQLite file; SQLite's trace callback says which thread ran each INSERT.
"""

from __future__ import annotations

import asyncio
import sqlite3
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

from conversations import store_engine, tables
from models.predictions import ModelDocument, PredictionDocument
from serving.prediction_log import LogPolicy, PredictionLog
from serving.settings import RecordText

MODEL: ModelDocument = {"name": "intent-classifier", "version": "3"}
# Longer than any test: only the test's own drain_once writes.
NEVER_S = 60.0


def answer(intent: str) -> PredictionDocument:
    return {
        "intent": intent,
        "confidence": 0.9,
        "fallback": False,
        "top_k": [],
        "sentiment": {"polarity": 0.1, "subjectivity": 0.2},
    }


@pytest.fixture
def inserts() -> Iterator[list[int]]:
    """The thread ident of every INSERT into `predictions` that SQLite started, in order."""
    seen: list[int] = []

    def trace(statement: str) -> None:
        if statement.lstrip().upper().startswith("INSERT INTO PREDICTIONS"):
            seen.append(threading.get_ident())

    def traced(dbapi_connection: sqlite3.Connection, _record: object) -> None:
        dbapi_connection.set_trace_callback(trace)

    sa.event.listen(sa.pool.Pool, "connect", traced)
    try:
        yield seen
    finally:
        sa.event.remove(sa.pool.Pool, "connect", traced)


def stored_intents(url: str) -> list[str]:
    engine = store_engine.create_engine(url)
    with engine.connect() as connection:
        query = sa.select(tables.predictions.c.intent).order_by(tables.predictions.c.prediction_id)
        intents = list(connection.scalars(query))
    engine.dispose()
    return intents


def new_log(tmp_path: Path) -> tuple[PredictionLog, str]:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    return PredictionLog(url, LogPolicy(RecordText.FULL, 100, 50, NEVER_S)), url


def test_on_sqlite_a_batch_is_written_on_the_event_loop_thread(tmp_path, inserts) -> None:
    log, url = new_log(tmp_path)

    async def scenario() -> tuple[bool, int]:
        log.record(["lost card", "refund"], [answer("lost_card"), answer("refund")], MODEL, 3.0)
        written = await log.drain_once()
        await log.on_close()
        return written, threading.get_ident()

    written, loop_thread = asyncio.run(scenario())
    assert written and stored_intents(url) == ["lost_card", "refund"]
    assert inserts == [loop_thread]  # one statement, on the loop: no thread hand-off


def test_a_locked_store_is_waited_for_on_a_thread_never_on_the_loop(tmp_path, inserts) -> None:
    log, url = new_log(tmp_path)
    holder = sqlite3.connect(url.removeprefix("sqlite:///"), isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")  # another process's write lock, held until released

    async def scenario() -> tuple[bool, int]:
        loop_thread = threading.get_ident()
        log.record(["top up"], [answer("top_up")], MODEL, 3.0)
        drain = asyncio.create_task(log.drain_once())
        while not any(thread != loop_thread for thread in inserts):
            assert not drain.done(), "the write gave up instead of waiting for the lock"
            await asyncio.sleep(0.01)  # the loop keeps running while the write waits
        assert not drain.done()  # waiting for the lock on a thread
        holder.execute("ROLLBACK")
        written = await drain
        await log.on_close()
        return written, loop_thread

    try:
        written, loop_thread = asyncio.run(asyncio.wait_for(scenario(), 60))
    finally:
        holder.close()
    assert written and stored_intents(url) == ["top_up"]
    # Tried once on the loop (refused at once: locked), then written by a thread.
    assert inserts[0] == loop_thread and inserts[-1] != loop_thread

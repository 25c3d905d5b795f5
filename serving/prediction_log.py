"""Recording every HTTP prediction in the store, off the response path.

A request only appends a `PendingPrediction` to a bounded in-memory queue (no I/O, no hashing,
no lock); a background task writes the queue to the store's `predictions` table in batches.
When the queue is full the record is dropped and counted (`intent_prediction_log_dropped_total`):
a slow or locked store never blocks or fails a request.

Durability: a clean stop (SIGTERM, Ctrl-C) flushes the queue before the process exits; a
SIGKILL loses at most what was answered since the last commit (under a batch waiting for
SERVING_RECORD_FLUSH_INTERVAL_S plus the batch being written; never more than the queue plus a
batch), never a row already committed (tests/serving/test_prediction_log_crash.py).
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import sqlite3
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import bentoml
import sqlalchemy as sa

from conversations import store_engine
from conversations.schema import PredictionRole
from conversations.writer import PredictionRow, insert_prediction_rows
from models.predictions import ModelDocument, PredictionDocument
from serving.drained_queue import DrainedQueue
from serving.settings import RecordText, ServingSettings

logger = logging.getLogger(__name__)
HTTP_CHANNEL = "http"
# The challenger's answers: a channel of their own, so monitoring's readers of served traffic
# (by channel) never count them as answers customers got.
SHADOW_CHANNEL = "shadow"

queue_depth = bentoml.metrics.Gauge(
    name="intent_prediction_log_queue_depth",
    documentation="Predictions waiting to be written to the store.",
    multiprocess_mode="livesum",
)
recorded_total = bentoml.metrics.Counter(
    name="intent_prediction_log_recorded_total",
    documentation="Predictions written to the store's predictions table.",
)
dropped_total = bentoml.metrics.Counter(
    name="intent_prediction_log_dropped_total",
    documentation="Predictions not recorded because the queue was full.",
)


@dataclass(frozen=True, slots=True)
class PendingPrediction:
    """What a request hands over: the answer's scalars and its request's metadata.

    Scalars, not the answer document: a few thousand queued documents with their top-k lists
    would be that many more objects for the garbage collector to walk.
    """

    text: str
    intent: str
    confidence: float
    fallback: bool
    model: ModelDocument
    polarity: float | None
    subjectivity: float | None
    latency_ms: float
    ts: datetime
    user_id: str | None = None
    session_id: str | None = None
    # Shadow scoring (serving/shadow.py): the served answer and the challenger's share an id.
    role: PredictionRole = PredictionRole.SERVED
    pair_id: str | None = None


@dataclass(frozen=True)
class LogPolicy:
    """How predictions are recorded (from ServingSettings' record_* fields)."""

    record_text: RecordText
    queue_size: int
    batch_size: int
    flush_interval_s: float

    @classmethod
    def of(cls, settings: ServingSettings) -> LogPolicy:
        """The policy of SERVING_RECORD_TEXT, _QUEUE_SIZE, _BATCH_SIZE, _FLUSH_INTERVAL_S."""
        return cls(
            settings.record_text,
            settings.record_queue_size,
            settings.record_batch_size,
            settings.record_flush_interval_s,
        )


class PredictionLog(DrainedQueue[PendingPrediction]):
    """A bounded queue of predictions and the task that writes it to the store in batches."""

    def __init__(self, store_url: str, policy: LogPolicy) -> None:
        super().__init__(policy.queue_size, policy.batch_size, policy.flush_interval_s)
        self.policy = policy
        self._engine = store_engine.create_engine(store_url)
        # SQLite: batches are written on the event loop while the write lock is free
        # (`_write_batch`); None elsewhere (PostgreSQL: network round trips, on a thread).
        self._loop_engine = _fail_fast_engine(store_url) if _is_sqlite(self._engine) else None

    def record(
        self,
        texts: Sequence[str],
        documents: Sequence[PredictionDocument],
        model: ModelDocument,
        latency_ms: float,
        user_id: str | None = None,
        session_id: str | None = None,
        pair_ids: Sequence[str | None] | None = None,
    ) -> None:
        """Queue the answers of one request (a batch's items share its latency and metadata).

        `pair_ids`: per answer, the id its shadow answer will carry (None: not shadowed).
        """
        ts = datetime.now(UTC)
        pairs = pair_ids if pair_ids is not None else [None] * len(texts)
        for text, document, pair_id in zip(texts, documents, pairs, strict=True):
            sentiment = document["sentiment"]
            pending = PendingPrediction(
                text,
                document["intent"],
                document["confidence"],
                document["fallback"],
                model,
                sentiment.get("polarity"),
                sentiment.get("subjectivity"),
                latency_ms,
                ts,
                user_id,
                session_id,
                PredictionRole.SERVED,
                pair_id,
            )
            self.offer(pending)

    def offer(self, pending: PendingPrediction) -> bool:
        """Queue one prediction; False (and counted as dropped) when the queue is full."""
        if not self.put(pending):
            dropped_total.inc()
            return False
        self.wake_if_batch_ready()
        return True

    async def on_close(self) -> None:
        """Write everything still queued (a clean stop loses nothing)."""
        while self.depth:
            if not await self.drain_once():
                logger.error("prediction log: %d records lost at shutdown", self.depth)
                break
        queue_depth.set(0)
        self._engine.dispose()
        if self._loop_engine is not None:
            self._loop_engine.dispose()

    async def drain_once(self) -> bool:
        """Write one batch from the head of the queue; False when the store refused it."""
        batch = self.take_batch()
        queue_depth.set(self.depth)
        try:
            await self._write_batch(batch)
        except sa.exc.SQLAlchemyError as problem:
            # Back at the head of the queue for the next try; what no longer fits is dropped.
            if lost := self.put_back(batch):
                dropped_total.inc(len(lost))
            queue_depth.set(self.depth)
            logger.warning("prediction log: store write failed (%s), will retry", problem)
            return False
        except Exception:  # a record the store can never take: retrying would loop forever
            logger.exception("prediction log: %d records could not be written", len(batch))
            dropped_total.inc(len(batch))
            return True
        recorded_total.inc(len(batch))
        return True

    async def _write_batch(self, batch: list[PendingPrediction]) -> None:
        """Write `batch` on the event loop when SQLite's write lock is free, else on a thread.

        A writer thread costs the loop GIL hand-offs: sqlite3 lets go of the GIL around each
        statement and then waits for the busy loop to hand it back (bench/README.md, "Cost of
        the prediction log"; the chat tier's group commit runs on the loop for the same reason).
        On the loop a batch costs its CPU (~6 ms for 500 rows) and nothing else. The loop must
        never wait for a lock, though: the loop's engine gives up at once when another process
        holds it, and that batch waits for the lock (busy timeout) on a thread instead.
        """
        if self._loop_engine is not None:
            try:
                self._write(self._loop_engine, batch)
                return
            except sa.exc.OperationalError as problem:
                if not _is_busy(problem):
                    raise
        await asyncio.to_thread(self._write, self._engine, batch)

    def _write(self, engine: sa.Engine, batch: list[PendingPrediction]) -> None:
        # One random id a batch, numbered per row: a uuid4 and a frozen dataclass per row cost
        # a third of a row's CPU (bench/README.md, "Cost of the prediction log").
        prefix = f"http-{uuid.uuid4().hex}-"
        rows = [self._row(pending, f"{prefix}{n}") for n, pending in enumerate(batch)]
        with engine.begin() as connection:
            insert_prediction_rows(connection, rows)

    def _row(self, pending: PendingPrediction, message_id: str) -> PredictionRow:
        mode = self.policy.record_text
        served = pending.role is PredictionRole.SERVED
        return {
            "message_id": message_id,
            "intent": pending.intent,
            "confidence": float(pending.confidence),
            "fallback": bool(pending.fallback),
            "model_name": pending.model["name"],
            "model_version": str(pending.model["version"]),
            "polarity": pending.polarity,
            "subjectivity": pending.subjectivity,
            "ts": pending.ts,
            "channel": HTTP_CHANNEL if served else SHADOW_CHANNEL,
            "latency_ms": pending.latency_ms,
            "text": pending.text if mode is RecordText.FULL else None,
            "text_sha256": (
                hashlib.sha256(pending.text.encode()).hexdigest()
                if mode is RecordText.HASH
                else None
            ),
            "user_id": pending.user_id,
            "session_id": pending.session_id,
            "role": pending.role.value,
            "pair_id": pending.pair_id,
        }


def _is_sqlite(engine: sa.Engine) -> bool:
    return engine.dialect.name == "sqlite"


def _fail_fast_engine(store_url: str) -> sa.Engine:
    """The store's engine with no busy timeout: a locked store fails at once, never waits."""
    engine = store_engine.create_engine(store_url)
    sa.event.listen(engine, "connect", _no_busy_timeout)  # after the store's own pragmas
    engine.dispose()  # the connection that created the schema still had the busy timeout
    return engine


def _no_busy_timeout(dbapi_connection: sqlite3.Connection, _record: object) -> None:
    dbapi_connection.execute("PRAGMA busy_timeout=0")


def _is_busy(problem: sa.exc.OperationalError) -> bool:
    """Whether SQLite refused because another connection holds the lock (SQLITE_BUSY)."""
    code = getattr(problem.orig, "sqlite_errorcode", None)
    return code is not None and code & 0xFF == sqlite3.SQLITE_BUSY

"""Recording every HTTP prediction in the store, off the response path and out of the worker.

A request only appends a record tuple to a bounded in-memory queue (no I/O, no hashing, no
lock); a background task sends the queue in batches through a pipe to the worker's writer
process (serving/prediction_log_writer.py), which inserts them into the store's `predictions`
table and answers how many it wrote. The queue's bound counts what waits in the worker and what
was sent but not yet written: when it is full the record is dropped and counted
(`intent_prediction_log_dropped_total`), so a slow, locked or dead store never blocks or fails
a request. A writer that dies loses (and counts as dropped) only what it had not answered; the
next flush starts another.

Durability: a clean stop (SIGTERM, Ctrl-C) sends the queue and waits for the writer to write
it; a SIGKILL of the serve tree loses at most what was answered since the last commit (under a
batch waiting for SERVING_RECORD_FLUSH_INTERVAL_S plus the batches sent and not yet committed;
never more than the queue), never a row already committed (tests/serving/
test_prediction_log_crash.py). A SIGKILL of the worker alone loses only its queue: the writer
writes what the pipe holds, then exits.
"""

from __future__ import annotations

import asyncio
import logging
import os
import sys
import time
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from conversations import store_engine
from conversations.schema import PredictionRole
from models.predictions import ModelDocument, PredictionDocument
from serving.drained_queue import DrainedQueue
from serving.prediction_log_writer import ANSWER, STORE_URL_ENV, Record, encode
from serving.prometheus_metrics import LazyCounter, LazyGauge
from serving.settings import RecordText, ServingSettings

logger = logging.getLogger(__name__)
# Where `serving` is importable from, for the writer's `python -m`.
PACKAGE_ROOT = Path(__file__).resolve().parents[1]
# A clean stop waits this long for the writer to write what is left (a locked store may not let
# it); what it has not answered by then is counted lost.
CLOSE_WAIT_S = 20.0
SERVED = PredictionRole.SERVED.value

queue_depth = LazyGauge(
    "intent_prediction_log_queue_depth",
    "Predictions waiting to be written to the store.",
    mode="livesum",
)
recorded_total = LazyCounter(
    "intent_prediction_log_recorded_total",
    "Predictions written to the store's predictions table.",
)
dropped_total = LazyCounter(
    "intent_prediction_log_dropped_total",
    "Predictions not recorded because the queue was full.",
)


@dataclass(frozen=True, slots=True)
class PendingPrediction:
    """One prediction to record from outside a request (shadow scoring's challenger answers)."""

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


class PredictionLog(DrainedQueue[Record]):
    """A bounded queue of predictions and the task that sends it to a writer process."""

    def __init__(self, store_url: str, policy: LogPolicy) -> None:
        super().__init__(policy.queue_size, policy.batch_size, policy.flush_interval_s)
        self.policy = policy
        self.store_url = store_url
        # The schema exists, and a bad URL fails start-up, before any writer is started.
        store_engine.create_engine(store_url).dispose()
        self._keep_text = policy.record_text is not RecordText.OFF
        self._writer: asyncio.subprocess.Process | None = None
        self._answers: asyncio.Task[None] | None = None
        self._sent: deque[int] = deque()  # rows of each batch sent and not yet answered
        self._in_flight = 0
        self._spawning = asyncio.Lock()  # the start-up's writer and a flush's: one at a time
        self._starting: asyncio.Task[asyncio.subprocess.Process | None] | None = None

    @property
    def depth(self) -> int:
        """Records waiting: queued here, or sent and not yet written by the writer."""
        return len(self._queue) + self._in_flight

    def has_room(self) -> bool:
        """Whether one more record fits under the queue's bound (what is in flight counts)."""
        return len(self._queue) + self._in_flight < self.queue_size

    @property
    def writer_pid(self) -> int | None:
        """The writer process's id, None while there is none."""
        return self._writer.pid if self._writer is not None else None

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
        ts = time.time()
        name, version, keep = model["name"], model["version"], self._keep_text
        pairs = pair_ids if pair_ids is not None else [None] * len(texts)
        queue = self._queue  # `offer_record` inlined: this runs on every request
        for text, document, pair_id in zip(texts, documents, pairs, strict=True):
            if len(queue) + self._in_flight >= self.queue_size:
                dropped_total.inc()
                continue
            sentiment = document["sentiment"]
            queue.append(
                (
                    text if keep else None,
                    document["intent"],
                    document["confidence"],
                    document["fallback"],
                    name,
                    version,
                    sentiment.get("polarity"),
                    sentiment.get("subjectivity"),
                    latency_ms,
                    ts,
                    user_id,
                    session_id,
                    SERVED,
                    pair_id,
                )
            )
        self.wake_if_batch_ready()

    def offer(self, pending: PendingPrediction) -> bool:
        """Queue one prediction; False (and counted as dropped) when the queue is full."""
        return self.offer_record(
            (
                pending.text if self._keep_text else None,
                pending.intent,
                pending.confidence,
                pending.fallback,
                pending.model["name"],
                pending.model["version"],
                pending.polarity,
                pending.subjectivity,
                pending.latency_ms,
                pending.ts.timestamp(),
                pending.user_id,
                pending.session_id,
                pending.role.value,
                pending.pair_id,
            )
        )

    def offer_record(self, record: Record) -> bool:
        """Queue one record tuple; False (and counted as dropped) when the queue is full."""
        if not self.put(record):
            dropped_total.inc()
            return False
        self.wake_if_batch_ready()
        return True

    def start(self) -> None:
        """Start the flushing task, and the writer now rather than at the first flush.

        Its imports take most of a second of CPU, better spent before traffic than during it.
        """
        super().start()
        self._starting = asyncio.create_task(self._ensure_writer())

    async def drain_once(self) -> bool:
        """Send one batch from the head of the queue; False when no writer can be started."""
        writer = await self._ensure_writer()
        if writer is None or writer.stdin is None:
            return False
        batch = self.take_batch()
        self._sent.append(len(batch))
        self._in_flight += len(batch)
        # Buffered by the pipe's transport when the pipe is full: never waits. The bound on
        # what is in flight is the queue's (`has_room`).
        writer.stdin.write(encode(batch))
        queue_depth.set(self.depth)
        return True

    async def on_close(self) -> None:
        """Send everything still queued and wait for the writer to write it."""
        while self._queue:
            if not await self.drain_once():
                logger.error("prediction log: %d records lost at shutdown", len(self._queue))
                break
        writer, answers = self._writer, self._answers
        if writer is not None and writer.stdin is not None and answers is not None:
            writer.stdin.close()  # the writer writes what it has read, then exits
            try:
                await asyncio.wait_for(asyncio.shield(answers), CLOSE_WAIT_S)
            except TimeoutError:
                logger.error("prediction log: writer still busy at shutdown, stopped")
                writer.kill()
                await answers
            await writer.wait()
        queue_depth.set(0)

    async def _ensure_writer(self) -> asyncio.subprocess.Process | None:
        """The running writer, started if there is none; None when it cannot be started."""
        async with self._spawning:
            if self._writer is None:
                await self._spawn()
            return self._writer

    async def _spawn(self) -> None:
        env = os.environ | {
            STORE_URL_ENV: self.store_url,
            "PYTHONPATH": os.pathsep.join(
                filter(None, [str(PACKAGE_ROOT), os.environ.get("PYTHONPATH")])
            ),
        }
        try:
            writer = await asyncio.create_subprocess_exec(
                sys.executable,
                "-m",
                "serving.prediction_log_writer",
                self.policy.record_text.value,
                stdin=asyncio.subprocess.PIPE,
                stdout=asyncio.subprocess.PIPE,
                env=env,
            )
        except OSError as problem:
            logger.warning("prediction log: cannot start the writer (%s), will retry", problem)
            return
        self._writer = writer
        self._answers = asyncio.create_task(self._read_answers(writer))

    async def _read_answers(self, writer: asyncio.subprocess.Process) -> None:
        """Count the writer's answers until it exits; what it never answered is dropped."""
        assert writer.stdout is not None
        try:
            while True:
                written, refused = ANSWER.unpack(await writer.stdout.readexactly(ANSWER.size))
                self._in_flight -= self._sent.popleft()
                recorded_total.inc(written)
                if refused:
                    dropped_total.inc(refused)
                queue_depth.set(self.depth)
        except asyncio.IncompleteReadError:  # the writer's stdout closed: it has exited
            pass
        code = await writer.wait()
        if lost := self._in_flight:
            logger.warning("prediction log: writer exited (%s), %d records not written", code, lost)
            dropped_total.inc(lost)
        self._sent.clear()
        self._in_flight = 0
        if self._writer is writer:
            self._writer = None  # the next flush starts another
        queue_depth.set(self.depth)

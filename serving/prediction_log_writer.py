"""The prediction log's writer process: inserts the batches a serving worker sends it.

Each serving worker starts one (`python -m serving.prediction_log_writer RECORD_TEXT`, the store's
URL in STORE_URL_ENV so a password never shows in `ps`; serving/prediction_log.py) and keeps
only the append on its request path: the worker's flush sends a batch of record tuples through
the writer's stdin, and the writer builds the rows, inserts them in one transaction and answers
on its stdout how many it wrote. SQLite's or
PostgreSQL's work, its CPU and its waits (a store locked by another process) stay out of the
worker's interpreter (bench/README.md, "The prediction log's writer process").

Frames, both ways, in the order sent: a batch is a 4-byte length and a pickle of a list of
`Record` tuples (the pipe is private to the worker and its child); an answer is two 4-byte
counts, rows written and rows refused for good. When stdin ends (the worker stopped or died),
the writer writes what it has read and exits: a crash of the worker alone loses nothing the
pipe already held. Stop signals are ignored: the end of stdin is the writer's stop.

This module imports neither BentoML nor the service: the process starts in about a second.
"""

from __future__ import annotations

import signal

if __name__ == "__main__":  # before the imports below, which take most of a second
    # A stop signal is for the worker, whose clean stop sends the rest of its queue and then
    # closes stdin: BentoML's arbiter signals a worker's children too, which would lose it.
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    signal.signal(signal.SIGINT, signal.SIG_IGN)

import hashlib
import logging
import os
import pickle
import struct
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import BinaryIO

import sqlalchemy as sa

from conversations import store_engine
from conversations.writer import PredictionRow, insert_prediction_rows

logger = logging.getLogger(__name__)

HTTP_CHANNEL = "http"
# The challenger's answers: a channel of their own, so monitoring's readers of served traffic
# (by channel) never count them as answers customers got.
SHADOW_CHANNEL = "shadow"
SERVED_ROLE = "served"

# What a request appends: text (None when the text is not recorded), intent, confidence,
# fallback, model name, model version, polarity, subjectivity, latency in ms, the answer's time
# (epoch seconds), user id, session id, role ("served" or "shadow"), pair id. A tuple, not a
# dataclass: building it is ~0.3 us against ~5 us for the frozen dataclass and its datetime.
Record = tuple[
    str | None,
    str,
    float,
    bool,
    str,
    str | int,
    float | None,
    float | None,
    float,
    float,
    str | None,
    str | None,
    str,
    str | None,
]

STORE_URL_ENV = "PREDICTION_LOG_WRITER_STORE_URL"
LENGTH = struct.Struct("<I")
ANSWER = struct.Struct("<II")  # rows written, rows refused for good
# A store that refuses a batch (down, locked past its busy timeout) is retried this often.
RETRY_S = 1.0
# Below the workers: under saturation a batch may wait, a request should not (the writer needs
# ~2 % of a core at 1,000 records a second).
NICENESS = 5


def encode(batch: list[Record]) -> bytes:
    """One frame of `batch` for the writer's stdin."""
    payload = pickle.dumps(batch, protocol=pickle.HIGHEST_PROTOCOL)
    return LENGTH.pack(len(payload)) + payload


def rows_of(batch: list[Record], record_text: str) -> list[PredictionRow]:
    """The `predictions` rows of `batch`; `record_text` is RecordText's value (full, hash, off)."""
    # One random id a batch, numbered per row: a uuid4 per row costs a third of a row's CPU.
    prefix = f"http-{uuid.uuid4().hex}-"
    return [_row(record, f"{prefix}{n}", record_text) for n, record in enumerate(batch)]


def _row(record: Record, message_id: str, record_text: str) -> PredictionRow:
    text, intent, confidence, fallback, name, version, polarity, subjectivity = record[:8]
    latency_ms, ts, user_id, session_id, role, pair_id = record[8:]
    return {
        "message_id": message_id,
        "intent": intent,
        "confidence": float(confidence),
        "fallback": bool(fallback),
        "model_name": name,
        "model_version": str(version),
        "polarity": polarity,
        "subjectivity": subjectivity,
        "ts": datetime.fromtimestamp(ts, UTC),
        "channel": HTTP_CHANNEL if role == SERVED_ROLE else SHADOW_CHANNEL,
        "latency_ms": latency_ms,
        "text": text if record_text == "full" else None,
        "text_sha256": (
            hashlib.sha256(text.encode()).hexdigest()
            if record_text == "hash" and text is not None
            else None
        ),
        "user_id": user_id,
        "session_id": session_id,
        "role": role,
        "pair_id": pair_id,
    }


def read_frame(stream: BinaryIO) -> list[Record] | None:
    """The next batch on `stream`; None at its end (a frame cut short counts as the end)."""
    header = stream.read(LENGTH.size)
    if len(header) < LENGTH.size:
        return None
    (size,) = LENGTH.unpack(header)
    payload = stream.read(size)
    if len(payload) < size:
        return None
    batch: list[Record] = pickle.loads(payload)
    return batch


def write_batch(engine: sa.Engine, batch: list[Record], record_text: str, parent: int) -> int:
    """Insert `batch` in one transaction, retrying while the store refuses; rows refused for good.

    Gives up (all refused) only when the worker that sent it is gone: nobody is left to count.
    """
    while True:
        try:
            with engine.begin() as connection:
                insert_prediction_rows(connection, rows_of(batch, record_text))
            return 0
        except sa.exc.OperationalError as problem:  # store down or locked: the batch waits
            if os.getppid() != parent:
                return len(batch)
            logger.warning("prediction log writer: store write failed (%s), will retry", problem)
            time.sleep(RETRY_S)
        except Exception:  # a record the store can never take: retrying would loop forever
            logger.exception("prediction log writer: %d records could not be written", len(batch))
            return len(batch)


def serve(store_url: str, record_text: str, source: BinaryIO, answers: BinaryIO) -> None:
    """Write every batch read from `source` and answer each on `answers`, until `source` ends."""
    engine = store_engine.create_engine(store_url)
    parent = os.getppid()
    try:
        while (batch := read_frame(source)) is not None:
            refused = write_batch(engine, batch, record_text, parent)
            try:
                answers.write(ANSWER.pack(len(batch) - refused, refused))
                answers.flush()
            except BrokenPipeError:  # the worker is gone; what is read is still written
                pass
    finally:
        engine.dispose()


def main(argv: list[str]) -> None:
    """Entry point: `python -m serving.prediction_log_writer RECORD_TEXT`, the URL in the env."""
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    (record_text,) = argv
    os.nice(NICENESS)
    serve(os.environ[STORE_URL_ENV], record_text, sys.stdin.buffer, sys.stdout.buffer)


if __name__ == "__main__":
    main(sys.argv[1:])

"""A monitoring run's "new intents, found" step (blocking I/O around monitoring/new_intents.py).

Reads the fallback messages of the window and of the window before it from the store, clusters
them with the sentence encoder training uses, writes `new_intents.json` beside the report and
publishes the clusters as the agents' "label these" queue (conversations/intent_queue.py).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from upath import UPath

from conversations import intent_queue, store_engine, tables
from conversations.intent_queue import QueuedCluster, QueuedMember
from conversations.schema import LabelTrust, Speaker
from monitoring.data import CHAT_CHANNEL, HTTP_CHANNEL
from monitoring.new_intents import (
    ClusterConfig,
    FallbackMessage,
    IntentCluster,
    NewIntentsFinding,
    find_new_intents,
)
from monitoring.settings import MonitoringSettings
from monitoring.window import Window

logger = logging.getLogger(__name__)


def read_fallbacks(engine: sa.Engine, window: Window) -> list[FallbackMessage]:
    """Customer messages of the window whose latest prediction fell back and that nobody has
    labelled yet (a labelled message is named already), chat and HTTP alike."""
    with engine.connect() as connection:
        rows = [
            *connection.execute(_chat_fallbacks(window)).all(),
            *connection.execute(_http_fallbacks(window)).all(),
        ]
    return [
        FallbackMessage(row.message_id, _utc(row.ts), row.text, row.channel, row.intent)
        for row in rows
    ]


def _usable_label_of(message_id: sa.ColumnElement[str]) -> sa.Exists:
    """Whether the message `message_id` has a label that is used (not unverified)."""
    labels = tables.labels
    return (
        sa.select(labels.c.label_id)
        .where(labels.c.message_id == message_id, labels.c.trust != LabelTrust.UNVERIFIED.value)
        .exists()
    )


def _chat_fallbacks(window: Window) -> sa.Select[Any]:
    """Unlabelled customer chat messages of the window whose latest prediction fell back."""
    messages, predictions = tables.messages, tables.predictions
    # The newest prediction of each message (one classified twice keeps its latest).
    newer = predictions.alias("newer")
    latest = (
        sa.select(sa.func.max(newer.c.prediction_id))
        .where(newer.c.message_id == messages.c.message_id)
        .correlate(messages)
        .scalar_subquery()
    )
    return (
        sa.select(
            messages.c.message_id,
            messages.c.ts,
            messages.c.text,
            sa.func.coalesce(messages.c.channel, CHAT_CHANNEL).label("channel"),
            predictions.c.intent,
        )
        .select_from(messages)
        .join(predictions, predictions.c.prediction_id == latest)
        .where(
            messages.c.speaker == Speaker.CUSTOMER.value,
            messages.c.ts >= window.start,
            messages.c.ts < window.end,
            predictions.c.fallback.is_(True),
            ~_usable_label_of(messages.c.message_id),
        )
    )


def _http_fallbacks(window: Window) -> sa.Select[Any]:
    """Unlabelled HTTP predictions of the window that fell back (they have no `messages` row)."""
    predictions = tables.predictions
    return sa.select(
        predictions.c.message_id,
        predictions.c.ts,
        predictions.c.text,  # None where SERVING_RECORD_TEXT kept only a hash or nothing
        predictions.c.channel,
        predictions.c.intent,
    ).where(
        predictions.c.channel == HTTP_CHANNEL,
        predictions.c.ts >= window.start,
        predictions.c.ts < window.end,
        predictions.c.fallback.is_(True),
        ~_usable_label_of(predictions.c.message_id),
    )


def _utc(value: datetime) -> datetime:
    return value if value.tzinfo is not None else value.replace(tzinfo=UTC)


def previous_window(window: Window) -> Window:
    """The window of the same length just before `window` (what a trend compares with)."""
    return Window(window.start - (window.end - window.start), window.start)


def queue_new_intents(
    settings: MonitoringSettings,
    window: Window,
    model_version: str,
    known_intents: Sequence[str],
    run_dir: UPath,
) -> NewIntentsFinding:
    """Find the window's candidate new intents, write new_intents.json, publish the queue."""
    from features.embeddings import shared_encoder  # the ONNX encoder, only when clustering

    started = time.perf_counter()
    config = ClusterConfig(
        min_cluster_size=settings.new_intent_min_cluster_size,
        max_messages=settings.new_intent_max_messages,
    )
    engine = store_engine.create_engine(settings.store_url)
    try:
        current = read_fallbacks(engine, window)
        previous = read_fallbacks(engine, previous_window(window))
        try:
            finding = find_new_intents(current, previous, shared_encoder().encode, config)
        except Exception as exc:  # e.g. no encoder: the drift report still goes out, saying so
            logger.exception("new intents: clustering failed")
            problem = f"{type(exc).__name__}: {exc}"
            finding = NewIntentsFinding(len(current), 0, 0, (), problem=problem)
        else:  # a failed run leaves the open queue as it was
            intent_queue.ensure_tables(engine)
            with engine.begin() as connection:
                queued = _queued(finding.clusters, run_dir.name, model_version, known_intents)
                intent_queue.publish(connection, queued)
    finally:
        engine.dispose()
    document: dict[str, Any] = finding.to_dict() | {"model_version": model_version}
    (run_dir / "new_intents.json").write_text(json.dumps(document, indent=2), encoding="utf-8")
    logger.info(
        "new intents: %d clusters from %d fallback messages (%d without text) in %.1f s",
        len(finding.clusters),
        finding.fallbacks,
        finding.without_text,
        time.perf_counter() - started,
    )
    return finding


def _queued(
    clusters: Sequence[IntentCluster], run_id: str, version: str, known: Sequence[str]
) -> list[QueuedCluster]:
    created_at = datetime.now(UTC)
    return [
        QueuedCluster(
            cluster_id=f"{run_id}-{cluster.key}",
            run_id=run_id,
            created_at=created_at,
            model_version=version,
            known_intents=tuple(sorted(set(known))),
            size=cluster.size,
            previous_size=cluster.previous_size,
            trend=cluster.trend.value,
            top_terms=cluster.top_terms,
            members=tuple(
                QueuedMember(m.message_id, m.text or "", m.ts, m.channel, m.predicted_intent)
                for m in cluster.members
            ),
        )
        for cluster in clusters
    ]

"""Reading the current window from the conversation store (blocking I/O)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

import pandas as pd
import sqlalchemy as sa

from conversations import store_engine, tables
from conversations.schema import LabelTrust, Speaker
from monitoring.window import Window

CHAT_CHANNEL, HTTP_CHANNEL = "chat", "http"


@dataclass
class CurrentData:
    """What happened in the window."""

    messages: pd.DataFrame  # customer messages with their prediction, by channel (chat, http...)
    labels: pd.DataFrame  # agent and feedback labels given in the window
    requests: pd.DataFrame  # support conversations opened in the window


# The columns of `CurrentData.messages`, also those of an empty window's frame.
MESSAGE_COLUMNS = [
    "message_id",
    "conversation_id",
    "ts",
    "text",
    "predicted_intent",
    "confidence",
    "fallback",
    "model_version",
    "polarity",
    "channel",
]


def read_current(store_url: str, window: Window) -> CurrentData:
    """Customer messages with predictions, labels and support requests of the window."""
    engine = store_engine.create_engine(store_url)
    latest = _latest_predictions()
    with engine.connect() as connection:
        current = CurrentData(
            pd.DataFrame(
                [
                    *connection.execute(_chat_query(window, latest)).mappings().all(),
                    *connection.execute(_http_query(window)).mappings().all(),
                ]
            ),
            pd.DataFrame(connection.execute(_label_query(window, latest)).mappings().all()),
            pd.DataFrame(connection.execute(_request_query(window)).mappings().all()),
        )
    engine.dispose()
    if current.messages.empty:
        current.messages = pd.DataFrame(columns=MESSAGE_COLUMNS)
    else:
        current.messages = current.messages.sort_values("ts", kind="stable", ignore_index=True)
    return current


def _latest_predictions() -> sa.Subquery:
    """The newest prediction per message (a message classified twice keeps its latest)."""
    predictions = tables.predictions
    return (
        sa.select(
            predictions.c.message_id,
            sa.func.max(predictions.c.prediction_id).label("prediction_id"),
        )
        .group_by(predictions.c.message_id)
        .subquery()
    )


def _chat_query(window: Window, latest: sa.Subquery) -> sa.Select[Any]:
    """Customer chat messages of the window with their latest prediction, oldest first."""
    messages, predictions = tables.messages, tables.predictions
    return (
        sa.select(
            messages.c.message_id,
            messages.c.conversation_id,
            messages.c.ts,
            messages.c.text,
            predictions.c.intent.label("predicted_intent"),
            predictions.c.confidence,
            predictions.c.fallback,
            predictions.c.model_version,
            predictions.c.polarity,
            sa.func.coalesce(messages.c.channel, CHAT_CHANNEL).label("channel"),
        )
        .join(latest, latest.c.message_id == messages.c.message_id)
        .join(predictions, predictions.c.prediction_id == latest.c.prediction_id)
        .where(
            messages.c.speaker == Speaker.CUSTOMER.value,
            messages.c.ts >= window.start,
            messages.c.ts < window.end,
        )
        .order_by(messages.c.ts)
    )


def _label_query(window: Window, latest: sa.Subquery) -> sa.Select[Any]:
    """Usable labels given in the window, with the confidence their message was answered with
    (for calibration on labelled traffic)."""
    labels, predictions = tables.labels, tables.predictions
    return (
        sa.select(
            labels.c.message_id,
            labels.c.text,
            labels.c.intent,
            labels.c.label_source,
            labels.c.predicted_intent,
            labels.c.ts,
            predictions.c.confidence,
        ).select_from(
            labels.outerjoin(latest, latest.c.message_id == labels.c.message_id).outerjoin(
                predictions, predictions.c.prediction_id == latest.c.prediction_id
            )
        )
    ).where(
        labels.c.ts >= window.start,
        labels.c.ts < window.end,
        labels.c.trust != LabelTrust.UNVERIFIED.value,  # never used, so never judged on
    )


def _request_query(window: Window) -> sa.Select[Any]:
    """Support requests opened in the window."""
    requests = tables.support_requests
    return sa.select(requests).where(
        requests.c.created_at >= window.start, requests.c.created_at < window.end
    )


def _http_query(window: Window) -> sa.Select[Any]:
    """Predictions answered over HTTP in the window (serving/prediction_log.py).

    They have no `messages` row: their text is on the prediction, or None where
    SERVING_RECORD_TEXT kept only a hash (such rows count everywhere but in text drift).
    """
    predictions = tables.predictions
    return sa.select(
        predictions.c.message_id,
        predictions.c.session_id.label("conversation_id"),
        predictions.c.ts,
        predictions.c.text,
        predictions.c.intent.label("predicted_intent"),
        predictions.c.confidence,
        predictions.c.fallback,
        predictions.c.model_version,
        predictions.c.polarity,
        predictions.c.channel,
    ).where(
        predictions.c.channel == HTTP_CHANNEL,
        predictions.c.ts >= window.start,
        predictions.c.ts < window.end,
    )


def count_labels_since(store_url: str, since: datetime | None) -> int:
    """Usable agent and feedback labels given after `since` (all of them when None)."""
    engine = store_engine.create_engine(store_url)
    query = (
        sa.select(sa.func.count())
        .select_from(tables.labels)
        .where(tables.labels.c.trust != LabelTrust.UNVERIFIED.value)
    )
    if since is not None:
        query = query.where(tables.labels.c.ts > since)
    with engine.connect() as connection:
        count = int(connection.scalar(query) or 0)
    engine.dispose()
    return count

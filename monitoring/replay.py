"""Write traffic into the conversation store as the chat tier would (drift demo, tests).

Each text becomes a one-message support conversation: a customer message, the champion's
prediction of it, and optionally an agent label, at timestamps spread over a window.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from conversations import store_engine, tables
from conversations.schema import DEFAULT_TRUST, LabelSource, Speaker
from conversations.writer import (
    LabelRecord,
    MessageRecord,
    PredictionRecord,
    insert_label,
    insert_message,
    insert_prediction,
)


def replay_traffic(
    store_url: str,
    texts: Sequence[str],
    predictions: Sequence[Mapping[str, Any]],
    start: datetime,
    end: datetime,
    true_intents: Sequence[str | None] | None = None,
    label_source: str = LabelSource.AGENT.value,
    handed_off: Sequence[bool] | None = None,
) -> list[str]:
    """Store messages (with predictions and labels where given); returns their message ids."""
    engine = store_engine.create_engine(store_url)
    step = (end - start) / max(len(texts), 1)
    message_ids: list[str] = []
    with engine.begin() as connection:
        for position, (text, prediction) in enumerate(zip(texts, predictions, strict=True)):
            ts = start + step * position
            message_id, room_id = uuid.uuid4().hex, uuid.uuid4().hex
            customer_id = f"replay-{position}"
            message_ids.append(message_id)
            insert_message(
                connection, _customer_message(message_id, room_id, customer_id, text, ts)
            )
            insert_prediction(connection, _replayed_prediction(message_id, prediction, ts))
            escalated = bool(handed_off[position]) if handed_off is not None else False
            connection.execute(_resolved_request(room_id, customer_id, ts, escalated))
            intent = true_intents[position] if true_intents is not None else None
            if intent:
                insert_label(
                    connection,
                    LabelRecord(
                        message_id=message_id,
                        text=text,
                        intent=intent,
                        label_source=LabelSource(label_source),
                        predicted_intent=prediction["intent"],
                        ts=ts + timedelta(minutes=1),
                        trust=DEFAULT_TRUST[label_source],
                    ),
                )
    engine.dispose()
    return message_ids


def _customer_message(
    message_id: str, room_id: str, customer_id: str, text: str, ts: datetime
) -> MessageRecord:
    """The first (and only) customer message of a replayed conversation."""
    return MessageRecord(
        message_id=message_id,
        conversation_id=room_id,
        turn=0,
        ts=ts,
        speaker=Speaker.CUSTOMER,
        user_id=customer_id,
        channel="replay",
        text=text,
        context={"session": {"message_count": 0}},
    )


def _replayed_prediction(
    message_id: str, prediction: Mapping[str, Any], ts: datetime
) -> PredictionRecord:
    """A prediction as the service answers it (its JSON), recorded for `message_id`."""
    sentiment = prediction.get("sentiment", {})
    return PredictionRecord(
        message_id=message_id,
        intent=prediction["intent"],
        confidence=prediction["confidence"],
        fallback=prediction["fallback"],
        model_name=prediction["model"]["name"],
        model_version=str(prediction["model"]["version"]),
        polarity=sentiment.get("polarity"),
        subjectivity=sentiment.get("subjectivity"),
        ts=ts,
        channel="replay",
    )


def _resolved_request(room_id: str, customer_id: str, ts: datetime, escalated: bool) -> sa.Insert:
    """The support request of a replayed conversation, resolved five minutes after it opened
    (handed off to an agent on a repeated fallback when `escalated`)."""
    return sa.insert(tables.support_requests).values(
        request_id=uuid.uuid4().hex,
        room_id=room_id,
        customer_id=customer_id,
        status="resolved",
        handoff_reason="repeated_fallback" if escalated else None,
        handed_off_at=ts if escalated else None,
        created_at=ts,
        resolved_at=ts + timedelta(minutes=5),
    )

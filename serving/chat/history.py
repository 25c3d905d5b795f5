"""The context the bot classifies a customer turn with: the turn as stored, and what came before.

Training reads the same stored rows (conversations/store_reader.py) and fills each turn's context
with `features.dialogue.DialogueHistory` (models/examples.py); the chat tier fills it here with
that same rule, so the model is served the context it was trained with:

- the turn's own stored context: `message_count` counts every earlier message of the room, any
  speaker (serving/chat/store.py writes it), and `duration_s`;
- `previous_intents`: the room's earlier customer turns, each by its best label as ingestion
  reads it, or else (not yet labelled, as during a live conversation) what the model predicted;
- `previous_bot_message`: the bot's or an agent's last message before the turn.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from conversations import tables
from conversations.schema import Speaker
from conversations.store_reader import best_labels
from features.dialogue import DialogueHistory
from serving.chat.bot import Turn


def turn_context(engine: sa.Engine, message_id: str) -> dict[str, Any]:
    """The model's context for a stored message ({} when the message is not stored)."""
    with engine.connect() as connection:
        return context_in(connection, message_id)


def context_in(connection: sa.Connection, message_id: str) -> dict[str, Any]:
    """`turn_context`, read inside the caller's transaction."""
    found = history_in(connection, message_id)
    if found is None:
        return {}
    history, raw = found
    return as_mapping(history.context_for(raw))


def history_in(connection: sa.Connection, message_id: str) -> tuple[DialogueHistory, Any] | None:
    """What came before a stored message, and its own stored context (None: not stored)."""
    messages = tables.messages
    turn = connection.execute(
        sa.select(messages.c.conversation_id, messages.c.turn, messages.c.context).where(
            messages.c.message_id == message_id
        )
    ).first()
    if turn is None:
        return None
    earlier = connection.execute(
        sa.select(messages.c.message_id, messages.c.speaker, messages.c.text, messages.c.intent)
        .where(messages.c.conversation_id == turn.conversation_id, messages.c.turn < turn.turn)
        .order_by(messages.c.turn)
    ).all()
    customer = [row.message_id for row in earlier if row.speaker == Speaker.CUSTOMER.value]
    labels = best_labels(connection, customer) if customer else {}
    predicted = _latest_predictions(connection, customer) if customer else {}
    history = DialogueHistory()
    for row in earlier:
        label = labels.get(row.message_id)
        intent = label["intent"] if label else row.intent or predicted.get(row.message_id)
        history.add(row.speaker, row.text, intent)
    return history, turn.context


def _latest_predictions(connection: sa.Connection, message_ids: Sequence[str]) -> dict[str, str]:
    """Per message, the intent of its newest prediction."""
    predictions = tables.predictions
    rows = connection.execute(
        sa.select(predictions.c.message_id, predictions.c.intent)
        .where(predictions.c.message_id.in_(message_ids))
        .order_by(predictions.c.prediction_id)
    )
    return {message_id: intent for message_id, intent in rows}  # the newest one is kept


def as_mapping(context: Any) -> dict[str, Any]:
    """A context (JSON text, a mapping or None) as the dict `/predict` takes."""
    if isinstance(context, dict):
        return context
    try:
        parsed = json.loads(context) if isinstance(context, str) and context else {}
    except ValueError:
        return {}
    return parsed if isinstance(parsed, dict) else {}


def customer_turns(connection: sa.Connection, room_id: str, since: datetime) -> list[Turn]:
    """The classified customer turns of a room since a time, oldest first (the bot's policy)."""
    messages, predicted = tables.messages, tables.predictions
    query = (
        sa.select(predicted.c.intent, predicted.c.fallback, predicted.c.polarity)
        .join(messages, messages.c.message_id == predicted.c.message_id)
        .where(
            messages.c.conversation_id == room_id,
            messages.c.speaker == Speaker.CUSTOMER.value,
            messages.c.ts >= since,
        )
        .order_by(messages.c.ts)
    )
    rows = connection.execute(query).all()
    return [Turn(row.intent, bool(row.fallback), float(row.polarity or 0.0)) for row in rows]

"""Conversation-context features: who the user is so far and where the session stands."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime
from typing import Any

import numpy as np

CONTEXT_NAMES: tuple[str, ...] = (
    "user_message_count",
    "user_previous_intents",
    "user_satisfaction_score",
    "session_duration_s",
    "session_message_count",
    "session_previous_intents",
    "hour_of_day",
    "day_of_week",
    "is_weekend",
)


def _as_mapping(context: Mapping[str, Any] | str | None) -> Mapping[str, Any]:
    if context is None or context == "":
        return {}
    if isinstance(context, str):
        parsed = json.loads(context)
        return parsed if isinstance(parsed, dict) else {}
    return context


def _section(context: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    value = context.get(name)
    return value if isinstance(value, dict) else {}


def _clock(ts: datetime | None) -> tuple[float, float, float]:
    """Hour, weekday and is-weekend of `ts`; (-1, -1, 0) when the time is unknown."""
    if ts is None or ts != ts:  # NaT compares unequal to itself
        return -1.0, -1.0, 0.0
    return float(ts.hour), float(ts.weekday()), float(ts.weekday() >= 5)


def _number(section: Mapping[str, Any], key: str) -> float:
    value = section.get(key)
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else 0.0


def _length(section: Mapping[str, Any], key: str) -> float:
    value = section.get(key)
    return float(len(value)) if isinstance(value, list) else 0.0


def context_features(
    contexts: list[Mapping[str, Any] | str | None], timestamps: list[datetime | None]
) -> np.ndarray:
    """One row of CONTEXT_NAMES per message; absent values are 0 (hour/day are -1 when unknown)."""
    out = np.zeros((len(contexts), len(CONTEXT_NAMES)), dtype=np.float64)
    for row, (raw, ts) in enumerate(zip(contexts, timestamps, strict=True)):
        context = _as_mapping(raw)
        user, session = _section(context, "user"), _section(context, "session")
        out[row] = (
            _number(user, "message_count"),
            _length(user, "previous_intents"),
            _number(user, "satisfaction_score"),
            _number(session, "duration_s"),
            _number(session, "message_count"),
            _length(session, "previous_intents"),
            *_clock(ts),
        )
    return out

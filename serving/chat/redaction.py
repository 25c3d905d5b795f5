"""What a customer's connection may see of a frame: no model internals.

A `bot_reply` is stored and sent to agents with the model's view of the customer turn (intent,
confidence, top-k, fallback, model version, frustration, hand-off reason): agents label and
triage with it. Customers get the same message without those fields, on every path that reaches
them (live fan-out, `resume` replay, `room_history`): the page not rendering them is not enough,
since anyone can read the frames of their own socket.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The bot_reply fields only agents see (serving/chat/store.py, BotReply.add_to).
INTERNAL_FIELDS = frozenset(
    {"intent", "confidence", "fallback", "model_version", "frustration", "handoff_reason", "top_k"}
)
MESSAGE_TYPES = frozenset({"new_message", "bot_reply"})


def customer_message(message: Mapping[str, Any]) -> dict[str, Any]:
    """A message event without the model's internals."""
    return {key: value for key, value in message.items() if key not in INTERNAL_FIELDS}


def customer_view(frame_type: str, data: Mapping[str, Any]) -> Mapping[str, Any]:
    """The data of a frame as a customer may receive it (unchanged when nothing is internal)."""
    if frame_type in MESSAGE_TYPES:
        return customer_message(data)
    if frame_type == "room_history":
        return {**data, "messages": [customer_message(m) for m in data.get("messages", ())]}
    return data

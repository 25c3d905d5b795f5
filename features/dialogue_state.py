"""A customer turn's context as a `DialogueState`, and as the token document a vectoriser
weighs (`dialogue_document`; `DialogueTokens` in features/dialogue_tokens.py applies it).

Apart from features/dialogue.py (which fills contexts and re-exports these), so that the
tokens' module can use them without importing features.dialogue, which hands the tokens out.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

PREVIOUS_INTENTS, PREVIOUS_BOT_MESSAGE, MESSAGE_COUNT = (
    "previous_intents",
    "previous_bot_message",
    "message_count",
)
_WORD = re.compile(r"\w+")
MAX_TEXT_WORDS = 8  # paired words per text: short turns are the ambiguous ones
MAX_BOT_WORDS = 24
MAX_TURN = 8  # turn positions beyond this look alike


@dataclass(frozen=True)
class DialogueState:
    """What came before a customer turn."""

    previous_intents: tuple[str, ...]
    previous_bot_message: str
    turn: int

    @property
    def has_context(self) -> bool:
        """True when anything came before (a first or standalone message has none)."""
        return bool(self.previous_intents or self.previous_bot_message or self.turn)


def _session(context: Mapping[str, Any] | str | None) -> Mapping[str, Any]:
    if not context:
        return {}
    if isinstance(context, str):
        try:
            context = json.loads(context)
        except ValueError:
            return {}
    session = context.get("session") if isinstance(context, Mapping) else None
    return session if isinstance(session, Mapping) else {}


def dialogue_state(context: Mapping[str, Any] | str | None) -> DialogueState:
    """The documented session keys of a context (JSON text or dict); absent ones are empty."""
    session = _session(context)
    intents = session.get(PREVIOUS_INTENTS)
    bot = session.get(PREVIOUS_BOT_MESSAGE)
    count = session.get(MESSAGE_COUNT)
    return DialogueState(
        tuple(str(i) for i in intents) if isinstance(intents, list) else (),
        bot if isinstance(bot, str) else "",
        int(count) if isinstance(count, int | float) and not isinstance(count, bool) else 0,
    )


def dialogue_document(text: str, state: DialogueState) -> str:
    """Space-separated tokens of a turn in its context (only `turn:0` without context)."""
    tokens = [f"turn:{min(max(state.turn, 0), MAX_TURN)}"]
    words = _WORD.findall(text.casefold())[:MAX_TEXT_WORDS]
    if state.previous_intents:
        last = state.previous_intents[-1]
        tokens.append(f"prev:{last}")
        tokens.extend(f"seen:{intent}" for intent in dict.fromkeys(state.previous_intents))
        tokens.extend(f"prev:{last}|{word}" for word in words)
    if state.previous_bot_message:
        tokens.extend(
            f"bot:{w}" for w in _WORD.findall(state.previous_bot_message.casefold())[:MAX_BOT_WORDS]
        )
        if state.previous_bot_message.rstrip().endswith("?"):
            tokens.append("bot_asked")
            tokens.extend(f"bot_asked|{word}" for word in words)
    return " ".join(tokens)

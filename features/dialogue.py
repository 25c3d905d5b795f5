"""Where a customer turn stands in its conversation, as features: the one place that reads it.

In a dialogue the same words carry different intents ("yes please" agrees to whatever the bot
just offered; "what about the fee?" asks the fee of what the customer came for). The context
of a turn says what came before (data/README.md, `context.session`):

- `previous_intents`: the intents of the customer's earlier turns, oldest first (the newest
  MAX_PREVIOUS_INTENTS when filled in from the conversation);
- `previous_bot_message`: the text of the bot's (or agent's) last message before this turn;
- `message_count`: how many messages the conversation had before this one (turn position).

`DialogueHistory` is the one rule that fills the first two from a conversation's earlier
messages: training calls it through `conversation_contexts` (each turn from its own conversation's
rows), the chat tier for the turn it is about to classify (serving/chat/history.py), so the model
is served the context it was trained with. `/predict` callers send the keys in `context`.
`DialogueTokens` (features/dialogue_tokens.py) turns them, with the text, into tokens a
vectoriser weighs (`dialogue_document`): the previous intents, the bot message's words, the turn,
and each word of the text paired with the previous intent and with whether the bot asked a
question (a linear model cannot pair them itself). It lives apart because its scikit-learn base
classes cost ~1 CPU s to import, which a pipeline run that only fills contexts never needs; it
is still reachable (and pickled, and named in the registry's trusted skops types) as
`features.dialogue.DialogueTokens`.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from features.dialogue_state import (
    MESSAGE_COUNT,
    PREVIOUS_BOT_MESSAGE,
    PREVIOUS_INTENTS,
    DialogueState,
    dialogue_document,
    dialogue_state,
)

__all__ = [
    "MESSAGE_COUNT",
    "PREVIOUS_BOT_MESSAGE",
    "PREVIOUS_INTENTS",
    "DialogueState",
    "dialogue_document",
    "dialogue_state",
]
# The newest earlier intents a context carries: a long-lived room's whole history would outgrow
# what /predict accepts (serving/inputs.py, 16 KiB) and the features read the newest ones.
MAX_PREVIOUS_INTENTS = 50
CUSTOMER = "customer"  # conversations.schema.Speaker.CUSTOMER; features import no schema


def has_dialogue_context(contexts: pd.Series) -> bool:
    """True when any row's context says what came before it."""
    return any(dialogue_state(context).has_context for context in contexts)


@dataclass
class DialogueHistory:
    """What a conversation said so far; each customer turn's context is read from it.

    `add` the conversation's messages oldest first (a customer turn's intent is its label, or
    what the model predicted when serving an unlabelled one); `context_for` a turn's own stored
    context gives that context with the session keys it lacks filled in.
    """

    intents: list[str] = field(default_factory=list)
    bot_message: str = ""

    def add(self, speaker: str, text: str, intent: str | None) -> None:
        """One more message: a customer turn's intent, or the bot's or an agent's words."""
        if speaker == CUSTOMER:
            if isinstance(intent, str) and intent:
                self.intents.append(intent)
                del self.intents[:-MAX_PREVIOUS_INTENTS]
        else:
            self.bot_message = str(text)

    def context_for(self, raw: Any) -> Any:
        """`raw` (JSON text or dict) with the history's keys it lacks; JSON text out.

        A turn with nothing before it keeps `raw` as it is.
        """
        return _with_history(raw, self.intents, self.bot_message)


_HISTORY_COLUMNS = ("conversation_id", "speaker", "text", "intent", "context")


def conversation_contexts(rows: pd.DataFrame) -> pd.Series:
    """Each customer row's context with `previous_intents` and `previous_bot_message` filled in.

    From the conversation's earlier rows (by `turn`), through `DialogueHistory`: the labelled
    customer turns' intents and the last bot or agent message. A key the row already has is
    kept as it is. Rows without a `conversation_id` are returned unchanged.
    """
    if rows.empty or "conversation_id" not in rows:
        return rows["context"] if "context" in rows else pd.Series(dtype=object)
    ordered = rows.sort_values(["conversation_id", "turn"], kind="stable")
    filled: dict[Any, str] = {}
    conversation, history = None, DialogueHistory()
    # Object arrays, not the Series: iterating a pandas string column fetches each value through
    # the extension array's __getitem__ (~3x slower over a 100k-row union); values are the same.
    columns = (ordered[name].to_numpy(dtype=object) for name in _HISTORY_COLUMNS)
    for index, cid, speaker, text, intent, raw in zip(ordered.index, *columns, strict=True):
        if cid != conversation:
            conversation, history = cid, DialogueHistory()
        if speaker == CUSTOMER:
            filled[index] = history.context_for(raw)
        history.add(speaker, text, intent)
    return pd.Series(filled, dtype=object).reindex(rows.index).fillna(rows["context"])


def _with_history(raw: Any, intents: list[str], bot: str) -> Any:
    """`raw` (JSON text or dict) with the session keys it lacks; JSON text out."""
    if not intents and not bot:
        return raw
    try:
        context = json.loads(raw) if isinstance(raw, str) and raw else dict(raw or {})
    except (ValueError, TypeError):
        return raw
    if not isinstance(context, dict):
        return raw
    session = context.get("session")
    session = dict(session) if isinstance(session, dict) else {}
    if intents:
        session.setdefault(PREVIOUS_INTENTS, list(intents))
    if bot:
        session.setdefault(PREVIOUS_BOT_MESSAGE, bot)
    return json.dumps({**context, "session": session}, sort_keys=True)


def __getattr__(name: str) -> Any:
    """`DialogueTokens` on first use (registered models name it here: pickle and skops)."""
    if name == "DialogueTokens":
        from features.dialogue_tokens import DialogueTokens

        return DialogueTokens
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

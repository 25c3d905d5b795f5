"""The worker's memory of its bot conversations: what the bot reads for a turn, without a query.

Answering a customer turn needs the room's dialogue so far (the model's context: the earlier
intents and the last bot message, `serving/chat/history.py`) and the bot policy's earlier turns.
Read from the store, that is a scan of the room that grows with every turn. The worker writes
those turns itself, so it keeps them here and reads the store only when this memory may be
behind it.

How it knows: a room's entry counts the messages it holds (`turns_seen`), and the store numbers
every message by counting the room's earlier ones (the `turn` the message transaction assigns).
A message whose turn is not `turns_seen` means someone else wrote to the room (an agent, another
worker, a hand-off, a rolled-back group): the entry is rebuilt from the store. Not seen: a label
given to an earlier turn of a conversation the bot still owns reaches the model's context only
at the next rebuild (at the latest, the next conversation).

Used only on the store's writer (inside group-commit jobs), so it needs no lock.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from conversations.schema import Speaker
from features.dialogue import DialogueHistory
from serving.chat.bot import Turn
from serving.chat.classification import Classification

# Rooms remembered per worker (least recently used forgotten first): ~1 KB each.
MAX_ROOMS = 10_000


@dataclass
class RoomDialogue:
    """A bot conversation as far as it got: its messages' count, the dialogue, the bot's turns."""

    request_id: str
    turns_seen: int
    history: DialogueHistory
    turns: list[Turn] = field(default_factory=list)


class DialogueMemory:
    """Bot conversations of this worker by room id, checked against the store's turn numbers."""

    def __init__(self, max_rooms: int = MAX_ROOMS) -> None:
        self.max_rooms = max_rooms
        self._rooms: OrderedDict[str, RoomDialogue] = OrderedDict()
        self.hits = 0
        self.misses = 0

    def before(self, room_id: str, request_id: str, turn: int) -> RoomDialogue | None:
        """The room's dialogue before message number `turn`, if held exactly (read, not kept)."""
        entry = self._rooms.get(room_id)
        if entry is None or entry.request_id != request_id or entry.turns_seen != turn:
            self.misses += 1
            return None
        self.hits += 1
        self._rooms.move_to_end(room_id)
        return entry

    def remember(self, room_id: str, dialogue: RoomDialogue) -> None:
        """Hold a room's dialogue read from the store (up to its `turns_seen`)."""
        self._rooms[room_id] = dialogue
        self._rooms.move_to_end(room_id)
        while len(self._rooms) > self.max_rooms:
            self._rooms.popitem(last=False)

    def answered(
        self,
        room_id: str,
        customer_turn: int,
        text: str,
        prediction: Classification,
        polarity: float,
        reply: str,
        reply_turn: int,
    ) -> None:
        """The bot answered message `customer_turn` with message `reply_turn`: both join."""
        entry = self._rooms.get(room_id)
        if entry is None or entry.turns_seen != customer_turn or reply_turn != customer_turn + 1:
            self.forget(room_id)  # another message came between: read the store next time
            return
        entry.history.add(Speaker.CUSTOMER.value, text, prediction.intent)
        entry.turns.append(Turn(prediction.intent, prediction.fallback, polarity))
        entry.history.add(Speaker.BOT.value, reply, None)
        entry.turns_seen = reply_turn + 1

    def forget(self, room_id: str) -> None:
        """Drop a room (a hand-off, or a turn this worker did not see)."""
        self._rooms.pop(room_id, None)

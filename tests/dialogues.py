"""A small multi-turn support-dialogue corpus, generated as conversation JSONL (data/README.md).

Each conversation: the customer states a need (its intent), the bot offers to act on it, the
customer answers ("yes please", "sure, go ahead" …) and thanks the bot. The answer's intent
depends on the previous turns (`confirm_block` after a lost card, `confirm_refund` after a
refund request …): the same words carry several intents in different conversations, so a model
of the text alone cannot tell them apart. Customers write with typos, as real ones do. Seeded:
the same arguments write the same file.
"""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path


@dataclass(frozen=True)
class Need:
    """An opening intent, how customers say it, the bot's offer and what agreeing means."""

    intent: str
    phrasings: tuple[str, ...]
    offer: str
    agree: str


NEEDS = (
    Need(
        "report_lost_card",
        (
            "i lost my {card} {when}",
            "my {card} was stolen {when}",
            "cant find my {card} anywhere",
            "someone took my {card} {when}",
        ),
        "I'm sorry to hear that. Shall I block the card now?",
        "confirm_block",
    ),
    Need(
        "request_refund",
        (
            "i want my money back for {item}",
            "please refund the {item} i returned",
            "the {item} was broken, refund me",
            "how do i get a refund for {item}",
        ),
        "I can refund that to your account. Shall I go ahead?",
        "confirm_refund",
    ),
    Need(
        "order_replacement",
        (
            "my {card} stopped working {when}",
            "the chip on my {card} is damaged",
            "i need a new {card}, this one is worn out",
            "{card} snapped in half {when}",
        ),
        "I can send you a replacement card. Shall I order it?",
        "confirm_replacement",
    ),
    Need(
        "check_order_status",
        (
            "where is my {item}",
            "has my {item} shipped yet",
            "my {item} hasn't arrived {when}",
            "what's the status of the {item} i ordered",
        ),
        "Your parcel is with the courier. Shall I send you the tracking link?",
        "confirm_tracking",
    ),
)
SLOTS = {
    "card": ("card", "debit card", "credit card", "bank card", "visa card"),
    "when": ("yesterday", "today", "last night", "this morning", "on friday", "last week"),
    "item": ("headphones", "jacket", "order", "parcel", "phone case", "shoes", "lamp"),
}
# Short replies, composed so that a corpus of a few hundred dialogues has many phrasings of
# each: the same words still agree to a different thing in each kind of conversation.
ANSWER_HEADS = ("yes", "yes please", "sure", "ok", "yeah", "please do", "go ahead", "yep")
ANSWER_TAILS = ("", " thanks", " that would be great", " do it", " right away", " go on")
THANK_HEADS = ("thank you", "thanks", "cheers", "many thanks", "great thanks", "brilliant thanks")
THANK_TAILS = ("", " so much", " a lot", " for your help", " for sorting it", " bye")
OPENINGS = tuple(need.intent for need in NEEDS)
AGREEMENTS = tuple(need.agree for need in NEEDS)
THANK_YOU = "thank_you"


def _typo(text: str, rng: random.Random, rate: float) -> str:
    """Sometimes swap two adjacent letters of one longer word."""
    words = text.split()
    long_words = [i for i, word in enumerate(words) if len(word) > 4 and word.isalpha()]
    if not long_words or rng.random() >= rate:
        return text
    at = rng.choice(long_words)
    word = words[at]
    cut = rng.randrange(1, len(word) - 2)
    words[at] = word[:cut] + word[cut + 1] + word[cut] + word[cut + 2 :]
    return " ".join(words)


def _opening(need: Need, rng: random.Random) -> str:
    template = rng.choice(need.phrasings)
    return template.format(**{name: rng.choice(values) for name, values in SLOTS.items()})


def _conversation(number: int, start: datetime, rng: random.Random) -> list[dict[str, object]]:
    need = NEEDS[number % len(NEEDS)]
    cid = f"conv-{number:05d}"
    turns = [
        ("customer", _typo(_opening(need, rng), rng, 0.3), need.intent),
        ("bot", need.offer, None),
        ("customer", rng.choice(ANSWER_HEADS) + rng.choice(ANSWER_TAILS), need.agree),
        ("bot", "Done. Anything else?", None),
        ("customer", rng.choice(THANK_HEADS) + rng.choice(THANK_TAILS), THANK_YOU),
    ]
    rows: list[dict[str, object]] = []
    previous: list[str] = []
    for turn, (speaker, text, intent) in enumerate(turns):
        row: dict[str, object] = {
            "message_id": f"{cid}-{turn}",
            "conversation_id": cid,
            "turn": turn,
            "ts": (start + timedelta(seconds=20 * turn)).isoformat().replace("+00:00", "Z"),
            "speaker": speaker,
            "user_id": f"user-{number % 37}",
            "channel": "web",
            "text": text,
            "context": {"session": {"message_count": turn, "previous_intents": list(previous)}},
        }
        if intent is not None:
            row |= {"intent": intent, "label_source": "seed"}
            previous.append(intent)
        rows.append(row)
    return rows


def write_dialogues(
    path: Path, conversations: int = 160, seed: int = 0, days: int = 3
) -> list[dict[str, object]]:
    """Write `conversations` dialogues as conversation JSONL at `path`; returns the rows."""
    rng = random.Random(seed)
    first = datetime(2026, 11, 2, 9, 0, tzinfo=UTC)
    rows = [
        row
        for number in range(conversations)
        for row in _conversation(
            number, first + timedelta(days=number % days, minutes=3 * number), rng
        )
    ]
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row) + "\n")
    return rows

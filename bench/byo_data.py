"""Generated multi-turn support dialogues for bench/byo.py ("bring your own conversations").

About 40 intents: 16 opening needs (a lost card, a refund, a transfer …: bench/byo_needs.py),
each answered by a bot offer ("Shall I block the card now?"). What the customer says next
depends on the turns before it: "yes please" or "thank you" after an offer agrees to *that* offer
(`confirm_block_card`, `confirm_refund` …); "what about the fee?" asks the fee of the need's
family (`fee_card`, `fee_transfer` …); "thank you" after the bot has done it is `thanks`, after
"anything else?" it is `goodbye`. Those follow-ups are the context-dependent turns: the same
words carry several intents, so text alone cannot tell them apart.

Rows are the canonical message schema (data/README.md), streamed day by day, never all in
memory. A customer row's context is what the chat tier records (`session.message_count`,
`duration_s`) plus the session's `previous_intents`. Seeded: equal arguments, equal rows.
"""

from __future__ import annotations

import random
import string
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from bench.byo_needs import NEEDS, Need
from bench.scale_data import jsonl_row

FAMILIES: tuple[str, ...] = ("card", "refund", "transfer", "account")
SLOTS: dict[str, tuple[str, ...]] = {
    "card": ("card", "debit card", "credit card", "visa", "bank card"),
    "when": ("yesterday", "today", "last week", "this morning", "on friday", ""),
    "item": ("shoes", "laptop", "jacket", "phone", "tickets", "headphones", "sofa"),
    "amount": ("50 pounds", "£20", "100 euros", "$300", "12.99", "two hundred"),
    "person": ("landlord", "mum", "friend", "brother", "plumber", "son"),
}
AGREE = (
    "yes please", "yes", "sure, go ahead", "ok do it", "please do", "thank you",
    "yes thank you", "that would be great", "go for it", "yep", "ok", "sounds good",
)  # fmt: skip
DECLINE = ("no thanks", "no", "not now", "maybe later", "no, leave it", "nope")
FEE_QUESTION = (
    "what about the fee?", "how much does it cost?", "is there a fee?", "does that cost anything",
    "what will i be charged", "any charges?", "how much is it",
)  # fmt: skip
THANKS = ("thank you", "thanks", "thanks a lot", "great, thank you", "cheers", "perfect thanks")
GOODBYE = ("no thank you", "thank you", "no that's all", "bye", "that's all thanks", "nothing else")
DONE = ("Done. Anything else I can help with?", "All set. Is there anything else?")
FEE_ANSWER = "It costs {fee} for this. Shall I go ahead?"
CLOSE = ("Glad I could help. Goodbye!", "Have a nice day!")
OK = ("No problem. Anything else?", "Understood. Is there anything else?")
# Intents of turns whose words mean different intents in different conversations.
CONTEXT_INTENTS: frozenset[str] = frozenset(
    {f"confirm_{need.name}" for need in NEEDS}
    | {f"fee_{family}" for family in FAMILIES}
    | {"decline", "thanks", "goodbye"}
)
INTENTS: tuple[str, ...] = tuple(sorted({need.name for need in NEEDS} | CONTEXT_INTENTS))


@dataclass
class Turn:
    """A customer turn to write, with the bot's answer that follows it."""

    text: str
    intent: str
    reply: str | None


class DialogueGenerator:
    """Deterministic (seeded) conversations, written day by day."""

    def __init__(self, seed: int, users: int, typo_rate: float = 0.08) -> None:
        self.rng = random.Random(seed)
        self.users = max(users, 1)
        self.typo_rate = typo_rate
        self.conversations = 0

    def day(self, start: datetime, end: datetime, messages: int) -> Iterator[dict[str, Any]]:
        """About `messages` rows (whole conversations) with timestamps in [start, end)."""
        span = (end - start).total_seconds()
        written = 0
        while written < messages:
            opened = start + timedelta(seconds=span * self.rng.random())
            for row in self._conversation(opened, end):
                yield row
                written += 1

    def _conversation(self, opened: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        self.conversations += 1
        conversation_id = f"d{self.conversations}"
        user_id = f"u{self.rng.randrange(self.users)}"
        ts, previous, turn = opened, list[str](), 0
        last = end - timedelta(seconds=1)
        for customer in self._turns(self.rng.choice(NEEDS)):
            session = {
                "duration_s": round((ts - opened).total_seconds()),
                "message_count": turn,
                "previous_intents": list(previous),
            }
            yield jsonl_row(
                conversation_id, turn, ts, "customer", user_id, customer.text, customer.intent
            ) | {"context": {"session": session}}
            previous.append(customer.intent)
            turn += 1
            if customer.reply is None:
                return
            ts = min(ts + timedelta(seconds=self.rng.uniform(1, 4)), last)
            yield jsonl_row(conversation_id, turn, ts, "bot", None, customer.reply, None)
            turn += 1
            ts = min(ts + timedelta(seconds=self.rng.uniform(5, 120)), last)

    def _turns(self, need: Need) -> Iterator[Turn]:
        """The customer's turns: the need, an answer to the offer, then a closing."""
        pick = self.rng.choice
        yield Turn(self._say(pick(need.phrasings)), need.name, need.offer)
        answer = self.rng.choices(("agree", "fee", "decline"), weights=(60, 25, 15))[0]
        if answer == "fee":
            fee = pick(("£5", "nothing", "1%", "£2.50"))
            yield Turn(
                self._say(pick(FEE_QUESTION)), f"fee_{need.family}", FEE_ANSWER.format(fee=fee)
            )
            answer = "agree" if self.rng.random() < 0.75 else "decline"
        if answer == "decline":
            yield Turn(self._say(pick(DECLINE)), "decline", pick(OK))
            yield Turn(self._say(pick(GOODBYE)), "goodbye", pick(CLOSE))
            return
        yield Turn(self._say(pick(AGREE)), f"confirm_{need.name}", pick(DONE))
        if self.rng.random() < 0.3:  # the fee asked after the fact
            yield Turn(self._say(pick(FEE_QUESTION)), f"fee_{need.family}", pick(OK))
            yield Turn(self._say(pick(GOODBYE)), "goodbye", None)
            return
        if self.rng.random() < 0.8:
            yield Turn(self._say(pick(THANKS)), "thanks", pick(CLOSE))

    def _say(self, template: str) -> str:
        """Fill the slots, then a typo now and then, as customers write."""
        text = " ".join(
            template.format(**{k: self.rng.choice(v) for k, v in SLOTS.items()}).split()
        )
        if len(text) > 3 and self.rng.random() < self.typo_rate:
            at = self.rng.randrange(len(text) - 1)
            kind = self.rng.randrange(3)
            if kind == 0:  # swap two letters
                text = text[:at] + text[at + 1] + text[at] + text[at + 2 :]
            elif kind == 1:  # drop one
                text = text[:at] + text[at + 1 :]
            else:  # a neighbouring key
                text = text[:at] + self.rng.choice(string.ascii_lowercase) + text[at + 1 :]
        return text

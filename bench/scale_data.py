"""Synthetic support conversations for bench/scale.py, streamed day by day, never all in memory.

Customer turns are Banking77 utterances labelled with their category (`label_source` `seed`);
each is answered by the bot with the answer `data/responses.yaml` gives for that intent. A
session holds one to four customer turns a few seconds to minutes apart; most follow-ups stay
on the same intent. Sessions start through the day, busier in office hours, and users come back
across days. Rows are the canonical message schema (data/README.md).
"""

from __future__ import annotations

import csv
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml

REPO_ROOT = Path(__file__).resolve().parents[1]
HOURLY_WEIGHT = [1, 1, 1, 1, 1, 2, 3, 5, 8, 10, 10, 9, 8, 9, 10, 10, 9, 8, 6, 5, 4, 3, 2, 1]
STORE_BATCH = 2_000


@dataclass(frozen=True)
class Utterance:
    """One Banking77 row."""

    text: str
    intent: str


@dataclass(frozen=True)
class Corpus:
    """What conversations are made of: utterances by intent and the bot's answers."""

    by_intent: dict[str, list[Utterance]]
    replies: dict[str, list[str]]

    @classmethod
    def load(cls, banking77: Path) -> Corpus:
        """Banking77's train.csv and test.csv (about 13k rows) and data/responses.yaml."""
        by_intent: dict[str, list[Utterance]] = {}
        for name in ("train.csv", "test.csv"):
            with (banking77 / name).open(encoding="utf-8", newline="") as handle:
                for row in csv.DictReader(handle):
                    by_intent.setdefault(row["category"], []).append(
                        Utterance(row["text"], row["category"])
                    )
        if not by_intent:
            raise ValueError(f"{banking77}: no Banking77 rows (train.csv, test.csv)")
        replies = yaml.safe_load((REPO_ROOT / "data" / "responses.yaml").read_text("utf-8"))
        return cls(by_intent, {str(k): list(v) for k, v in replies.items()})

    def reply(self, intent: str, rng: random.Random) -> str:
        """The bot's answer to a customer turn of `intent`."""
        return rng.choice(self.replies.get(intent) or self.replies["default"])


class ConversationGenerator:
    """Deterministic (seeded) message rows, one day after another."""

    def __init__(self, corpus: Corpus, seed: int, users: int, prefix: str) -> None:
        self.corpus = corpus
        self.rng = random.Random(seed)
        self.intents = sorted(corpus.by_intent)
        self.users = max(users, 1)
        self.prefix = prefix  # keeps ids of a later batch apart from the first one's
        self.conversations = 0

    def day(self, start: datetime, end: datetime, messages: int) -> Iterator[dict[str, Any]]:
        """About `messages` rows (whole sessions) with timestamps in [start, end)."""
        span = (end - start).total_seconds()
        written = 0
        while written < messages:
            opened = start + timedelta(seconds=self._second_of_day(span))
            for row in self._session(opened, end):
                yield row
                written += 1

    def _second_of_day(self, span: float) -> float:
        """A session start: weighted by the hour on a whole day, uniform on a part of one."""
        if span < 86_400:
            return span * self.rng.random()
        hour = self.rng.choices(range(24), weights=HOURLY_WEIGHT)[0]
        return hour * 3600 + self.rng.random() * 3600

    def _session(self, opened: datetime, end: datetime) -> Iterator[dict[str, Any]]:
        self.conversations += 1
        conversation_id = f"{self.prefix}c{self.conversations}"
        user_id = f"u{self.rng.randrange(self.users)}"
        intent = self.rng.choice(self.intents)
        turns = self.rng.choices((1, 2, 3, 4), weights=(45, 30, 15, 10))[0]
        ts, previous = opened, list[str]()
        for index in range(turns):
            if index and self.rng.random() < 0.3:  # a follow-up on another topic
                intent = self.rng.choice(self.intents)
            text = self.rng.choice(self.corpus.by_intent[intent]).text
            # The session so far, as the chat tier records it on a customer's message.
            session = {
                "duration_s": round((ts - opened).total_seconds()),
                "message_count": 2 * index + 1,
                "previous_intents": list(previous),
            }
            row = jsonl_row(conversation_id, 2 * index, ts, "customer", user_id, text, intent)
            yield row | {"context": {"session": session}}
            ts = min(ts + timedelta(seconds=self.rng.uniform(1, 4)), end - timedelta(seconds=1))
            reply = self.corpus.reply(intent, self.rng)
            yield jsonl_row(conversation_id, 2 * index + 1, ts, "bot", None, reply, None)
            previous.append(intent)
            ts = min(ts + timedelta(seconds=self.rng.uniform(5, 180)), end - timedelta(seconds=1))


def jsonl_row(
    conversation_id: str,
    turn: int,
    ts: datetime,
    speaker: str,
    user_id: str | None,
    text: str,
    intent: str | None,
) -> dict[str, Any]:
    """One message in the documented conversation JSONL schema (data/README.md)."""
    return {
        "message_id": f"{conversation_id}-{turn}",
        "conversation_id": conversation_id,
        "turn": turn,
        "ts": ts.strftime("%Y-%m-%dT%H:%M:%S.%fZ"),
        "speaker": speaker,
        "user_id": user_id,
        "channel": "web",
        "text": text,
        "intent": intent,
        "label_source": "seed" if intent else "none",
        "context": {},
    }


def day_windows(last_day: datetime, days: int) -> list[tuple[datetime, datetime]]:
    """`days` whole UTC days ending with the one before `last_day` (midnight), oldest first."""
    return [
        (last_day - timedelta(days=n), last_day - timedelta(days=n - 1)) for n in range(days, 0, -1)
    ]


def write_jsonl(path: Path, rows: Iterator[dict[str, Any]]) -> int:
    """Stream rows to a JSONL file; returns how many."""
    count = 0
    with path.open("w", encoding="utf-8") as handle:
        for row in rows:
            handle.write(json.dumps(row, ensure_ascii=False) + "\n")
            count += 1
    return count


def write_store(engine: sa.Engine, rows: Iterator[dict[str, Any]]) -> int:
    """Insert rows into the chat store's `messages` table in batches; returns how many."""
    from conversations import tables

    count, batch = 0, []
    for row in rows:
        batch.append(
            row
            | {
                "ts": datetime.fromisoformat(row["ts"]).astimezone(UTC),
                "context": json.dumps(row["context"]),
            }
        )
        if len(batch) >= STORE_BATCH:
            count += _flush(engine, tables.messages, batch)
    return count + _flush(engine, tables.messages, batch)


def _flush(engine: sa.Engine, table: sa.Table, batch: list[dict[str, Any]]) -> int:
    if not batch:
        return 0
    with engine.begin() as connection:
        connection.execute(sa.insert(table), batch)
    size = len(batch)
    batch.clear()
    return size

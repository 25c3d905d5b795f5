"""`predictions` rows with the values a batch insert gets wrong first: NULLs, unicode, hashes."""

from __future__ import annotations

import hashlib
from datetime import UTC, datetime, timedelta, timezone

from conversations.writer import PredictionRow

TS = datetime(2026, 11, 30, 17, 5, 9, 123456, tzinfo=UTC)
TEXTS = (
    "Où est ma carte ? 🚀 — 测试 مرحبا",
    "e\u0301 combining, \u200f right-to-left mark, tab\tand newline\n",
    "'); DROP TABLE predictions; -- ? :name %s",
    "x" * 5000,
)


def awkward_prediction_rows(count: int, nul: bool = True) -> list[PredictionRow]:
    """`count` rows cycling through awkward shapes; `nul`: one text holds a NUL character
    (PostgreSQL refuses NUL in text, SQLite keeps it)."""
    texts = (*TEXTS, "before\x00after") if nul else TEXTS
    return [_row(n, texts[n % len(texts)]) for n in range(count)]


def _row(n: int, text: str) -> PredictionRow:
    shape = n % 3
    row: PredictionRow = {
        "message_id": f"http-batch-{n}",
        "intent": "card_arrival" if n % 2 else "意图_unicode",
        "confidence": (0.0, 1.0, 1e-300, 0.123456789012345)[n % 4],
        "fallback": n % 2 == 0,
        "model_name": "intent-classifier",
        "model_version": str(n % 7),
        "polarity": -1.0 if shape == 1 else None,
        "subjectivity": 0.5 if shape == 1 else None,
        # Microseconds, and an offset other than UTC: both paths store the same instant text.
        "ts": TS + timedelta(microseconds=n)
        if shape
        else TS.astimezone(timezone(timedelta(hours=5, minutes=30))),
        "channel": "http" if shape == 1 else None,
        "latency_ms": 1.5 * n if shape else None,
        "text": text if shape != 2 else None,  # hash mode: no text, its SHA-256
        "text_sha256": hashlib.sha256(text.encode()).hexdigest() if shape == 2 else None,
        "user_id": "ünïcode-user" if shape == 1 else None,
        "session_id": "s-1" if shape == 1 else None,
        "role": "shadow" if shape == 1 else None,
        "pair_id": f"pair-{n}" if shape == 1 else None,
    }
    return row

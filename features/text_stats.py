"""Surface statistics of a message: length, words, punctuation, shouting."""

from __future__ import annotations

import numpy as np

TEXT_STAT_NAMES: tuple[str, ...] = (
    "char_count",
    "word_count",
    "avg_word_length",
    "question_marks",
    "exclamation_marks",
    "punctuation_count",
    "uppercase_ratio",
    "digit_count",
)
_OTHER_PUNCTUATION = ".,;:"


def text_stats(texts: list[str]) -> np.ndarray:
    """One row of TEXT_STAT_NAMES per text."""
    out = np.zeros((len(texts), len(TEXT_STAT_NAMES)), dtype=np.float64)
    for row, text in enumerate(texts):
        words = text.split()
        letters = [ch for ch in text if ch.isalpha()]
        out[row] = (
            len(text),
            len(words),
            sum(len(word) for word in words) / len(words) if words else 0.0,
            text.count("?"),
            text.count("!"),
            sum(text.count(mark) for mark in _OTHER_PUNCTUATION),
            sum(ch.isupper() for ch in letters) / len(letters) if letters else 0.0,
            sum(ch.isdigit() for ch in text),
        )
    return out

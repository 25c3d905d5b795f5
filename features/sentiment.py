"""TextBlob's pattern-based sentiment (offline: it needs no NLTK corpora)."""

from __future__ import annotations

import numpy as np
from textblob import TextBlob

SENTIMENT_NAMES: tuple[str, ...] = ("polarity", "subjectivity")


def sentiment(texts: list[str]) -> np.ndarray:
    """Polarity in [-1, 1] and subjectivity in [0, 1] per text."""
    out = np.zeros((len(texts), 2), dtype=np.float64)
    for row, text in enumerate(texts):
        scores = TextBlob(text).sentiment
        out[row] = (scores.polarity, scores.subjectivity)
    return out

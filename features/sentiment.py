"""TextBlob's pattern-based sentiment (offline: it needs no NLTK corpora)."""

from __future__ import annotations

import numpy as np

SENTIMENT_NAMES: tuple[str, ...] = ("polarity", "subjectivity")


def sentiment(texts: list[str]) -> np.ndarray:
    """Polarity in [-1, 1] and subjectivity in [0, 1] per text."""
    # Imported here, not at module level: `textblob` imports all of NLTK (and scipy.stats through
    # it), several seconds of CPU that every importer of `features` (Dagster's code server, each
    # run and step process) would otherwise pay whether or not it scores a text. After the first
    # call this is a dictionary look-up in sys.modules.
    # The lexicon scorer behind `TextBlob(text).sentiment`, called directly: TextBlob's wrapper
    # builds a blob and a new namedtuple class per text, half the cost of scoring it (same
    # numbers: tests/features/test_sentiment.py).
    from textblob.en import sentiment as pattern_sentiment

    out = np.zeros((len(texts), 2), dtype=np.float64)
    for row, text in enumerate(texts):
        out[row] = pattern_sentiment(text)
    return out


def warm_up() -> None:
    """Import TextBlob and load its sentiment lexicon now rather than on the first text.

    For long-lived processes that score every request (the BentoML worker): they pay the import
    at start-up, before `gc.freeze()`, instead of in the first request's latency.
    """
    sentiment(["warm up"])

"""features.sentiment scores exactly what TextBlob's own `.sentiment` reports."""

from __future__ import annotations

import numpy as np
from textblob import TextBlob

from features.sentiment import SENTIMENT_NAMES, sentiment

TEXTS = [
    "I am very happy with the new card, thank you!",
    "This is the worst service, I'm NOT pleased :(",
    "When will my card arrive?",
    "",
    "   ",
    "great great great",
    "ünïcode ☃ and emoji 😡",
]


def test_scores_match_textblob_for_every_text() -> None:
    expected = np.array([tuple(TextBlob(text).sentiment) for text in TEXTS])
    scores = sentiment(TEXTS)
    assert scores.shape == (len(TEXTS), len(SENTIMENT_NAMES))
    np.testing.assert_array_equal(scores, expected)
    # The texts span both signs, so a scorer returning zeros or one constant cannot pass.
    assert scores[:, 0].min() < 0 < scores[:, 0].max()


def test_no_texts_give_an_empty_matrix() -> None:
    assert sentiment([]).shape == (0, 2)

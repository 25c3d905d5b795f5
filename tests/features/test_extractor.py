from datetime import UTC, datetime

import numpy as np
import pandas as pd

from features import FEATURE_NAMES, FeatureExtractor
from features.transformers import MessageFeatures

MESSAGES = [
    "Where is my new card? I ordered it 2 weeks ago!",
    "I HATE this app, it is terrible!!!",
    "Can I top up with Apple Pay in London?",
    "thanks",
]


def test_features_of_one_message_are_identical_alone_or_in_a_batch(banking77_train):
    extractor = FeatureExtractor()
    texts = [*MESSAGES, *banking77_train["text"].head(300).tolist()]
    batch = extractor.extract_array(texts)
    for position in (0, 1, 2, 3, 150, 303):
        alone = extractor.extract_array([texts[position]])
        np.testing.assert_array_equal(alone[0], batch[position])


def test_feature_columns_and_values_make_sense():
    frame = FeatureExtractor().extract(MESSAGES)
    assert list(frame.columns) == list(FEATURE_NAMES)
    first, angry = frame.iloc[0], frame.iloc[1]
    assert first["question_marks"] == 1 and first["exclamation_marks"] == 1
    assert first["digit_count"] == 1
    assert angry["polarity"] < 0 and angry["uppercase_ratio"] > 0.2
    assert frame.iloc[2]["entity_count"] >= 1  # London (and Apple Pay)
    assert (frame["noun_count"] >= 0).all() and frame.iloc[0]["stopword_count"] > 0


def test_context_features_read_the_documented_keys():
    context = {
        "user": {"message_count": 7, "previous_intents": ["a", "b"], "satisfaction_score": 0.4},
        "session": {"duration_s": 95, "message_count": 3, "previous_intents": ["a"]},
    }
    saturday = datetime(2026, 11, 28, 14, 30, tzinfo=UTC)
    row = FeatureExtractor().extract(["hi"], [context], [saturday]).iloc[0]
    assert row["user_message_count"] == 7 and row["user_previous_intents"] == 2
    assert row["session_duration_s"] == 95 and row["session_previous_intents"] == 1
    assert (row["hour_of_day"], row["day_of_week"], row["is_weekend"]) == (14, 5, 1)
    missing = FeatureExtractor().extract(["hi"]).iloc[0]
    assert missing["hour_of_day"] == -1 and missing["user_message_count"] == 0


def test_transformer_matches_the_batch_api():
    frame = pd.DataFrame({"text": MESSAGES, "context": ["{}"] * len(MESSAGES)})
    transformed = MessageFeatures().fit(frame).transform(frame)
    np.testing.assert_array_equal(
        transformed, FeatureExtractor().extract_array(MESSAGES, ["{}"] * 4)
    )

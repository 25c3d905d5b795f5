"""The gate's baselines, fitted and scored on real splits (models/baselines.py)."""

from __future__ import annotations

import pandas as pd

from models.baselines import score_baselines
from models.splits import TEST, TRAIN, assign_splits


def test_baselines_score_the_majority_share_and_a_plain_text_model(small_slice):
    examples = small_slice.rename(columns={"category": "intent"}).assign(context="{}")
    examples["split"] = assign_splits(examples["text"].tolist(), examples["intent"].tolist())
    train, test = examples[examples["split"] == TRAIN], examples[examples["split"] == TEST]
    scores = {score.name: score for score in score_baselines(train, test)}
    assert list(scores) == ["majority_class", "word_tfidf_linear"]
    majority = train["intent"].value_counts().idxmax()
    assert scores["majority_class"].test_accuracy == (test["intent"] == majority).mean()
    assert scores["word_tfidf_linear"].test_accuracy > 2 * scores["majority_class"].test_accuracy


def test_one_intent_leaves_only_the_majority_baseline():
    frame = pd.DataFrame({"text": ["a b", "c d", "e f"], "intent": "x", "context": "{}"})
    scores = score_baselines(frame, frame)
    assert [(s.name, s.test_accuracy) for s in scores] == [("majority_class", 1.0)]


def test_baselines_on_large_data_are_fitted_on_a_bounded_sample_of_every_intent(small_slice):
    examples = small_slice.rename(columns={"category": "intent"}).assign(context="{}")
    examples["split"] = assign_splits(examples["text"].tolist(), examples["intent"].tolist())
    train, test = examples[examples["split"] == TRAIN], examples[examples["split"] == TEST]
    budget = len(train) // 3

    bounded = score_baselines(train, test, max_examples=budget, seed=0)
    whole = score_baselines(train, test)

    assert [s.name for s in bounded] == ["majority_class", "word_tfidf_linear"]
    assert all(0 < s.fitted_on <= budget for s in bounded), bounded
    assert all(s.fitted_on == len(train) for s in whole), whole
    # A budget above the data's size changes nothing: small data is fitted whole.
    assert score_baselines(train, test, max_examples=len(train), seed=0) == whole

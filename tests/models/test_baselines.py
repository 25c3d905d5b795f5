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

"""Baselines the first model must beat: trained in the same run, on the same split.

A fixed accuracy floor only means something for the data it was tuned on (0.85 is Banking77's).
What a first model must show on any data is that it learned more than a trivial model: it is
compared with the majority class and a plain word TF-IDF + linear model, both fitted on the
challenger's training split and scored on the same frozen test split (models/promotion.py).
The baselines are a floor, not the product: on large data they are fitted on a bounded sample
of that split, the same share of every intent (`selection_sample`, at most
TRAIN_SELECTION_MAX_EXAMPLES rows, the candidate search's sample size), so the gate's cost stops
growing with the data (at 1M messages, ~400k rows: the word TF-IDF + LinearSVC refit dominated
`model_promotion`). Small data is fitted whole, exactly as before.
Pure: DataFrames in, scores out; no MLflow, no Dagster.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import pandas as pd
from sklearn.compose import ColumnTransformer
from sklearn.dummy import DummyClassifier
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.metrics import accuracy_score, f1_score
from sklearn.pipeline import Pipeline
from sklearn.svm import LinearSVC

from models.inputs import model_input
from models.selection import selection_sample


@dataclass(frozen=True)
class BaselineScore:
    """One baseline's scores on the frozen test split."""

    name: str
    test_accuracy: float
    macro_f1: float
    fitted_on: int = 0  # training rows the baseline was fitted on (the sample on large data)


def _majority_class() -> Pipeline:
    return Pipeline([("clf", DummyClassifier(strategy="most_frequent"))])


def _word_tfidf_linear() -> Pipeline:
    # Plain on purpose: word unigrams, default TF-IDF, a linear SVM with default C.
    features = ColumnTransformer([("tfidf", TfidfVectorizer(), "text")])
    return Pipeline([("features", features), ("clf", LinearSVC())])


BASELINES: dict[str, Callable[[], Pipeline]] = {
    "majority_class": _majority_class,
    "word_tfidf_linear": _word_tfidf_linear,
}


def score_baselines(
    train: pd.DataFrame, test: pd.DataFrame, max_examples: int | None = None, seed: int = 0
) -> tuple[BaselineScore, ...]:
    """Each baseline fitted on `train` and scored on `test` (both with `text` and `intent`).

    With `max_examples`, a larger `train` is replaced by its seeded per-intent sample of at most
    that many rows (every intent kept); the test split is always scored whole.
    """
    if train.empty or test.empty:
        return ()
    if max_examples is not None:
        train = selection_sample(train, max_examples, seed)
    truth = test["intent"].astype(str).to_numpy()
    scores = []
    one_intent = train["intent"].nunique() < 2  # a linear model needs two classes to fit
    for name, build in BASELINES.items():
        if one_intent and name != "majority_class":
            continue
        model = build().fit(model_input(train), train["intent"].astype(str).to_numpy())
        predicted = model.predict(model_input(test))
        scores.append(
            BaselineScore(
                name,
                # Unrounded: compared with the challenger's unrounded accuracy on the same rows.
                float(accuracy_score(truth, predicted)),
                float(f1_score(truth, predicted, average="macro", zero_division=0)),
                len(train),
            )
        )
    return tuple(scores)

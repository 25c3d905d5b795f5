"""Fitting on distinct examples weighted by their counts (models/weighted_examples.py, issue 10):
the same model as fitting every copy, the weights reach the estimator, the search and the refit
fit that way, and each candidate's declared input columns are the ones its pipeline reads."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.base import clone
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer

from models.candidate_choice import search_then_refit
from models.candidates import SEARCH_SPACE, TEXT_ONLY
from models.inputs import MODEL_INPUT_COLUMNS, model_input
from models.search import SearchSettings
from models.selection import SelectionBudget
from models.weighted_examples import distinct_examples, fit_distinct


@pytest.fixture(scope="module")
def repeated(small_slice: pd.DataFrame) -> pd.DataFrame:
    """Each of 240 distinct messages 1-6 times (as logged conversations repeat them), each
    copy with its own context, shuffled."""
    rng = np.random.default_rng(0)
    frame = small_slice.rename(columns={"category": "intent"})
    copies = frame.loc[frame.index.repeat(rng.integers(1, 7, size=len(frame)))]
    copies = copies.assign(context=[f'{{"turn": {i}}}' for i in range(len(copies))])
    return copies.sample(frac=1.0, random_state=0).reset_index(drop=True)


def _logreg_fixed_features():
    """tfidf_logreg whose features do not depend on how many copies a text has (no idf, no
    min_df), so fitting distinct rows and every copy see the same feature rows."""
    pipeline = SEARCH_SPACE["tfidf_logreg"].build()
    return pipeline.set_params(
        features__word__use_idf=False,
        features__char__use_idf=False,
        features__char__min_df=1,
        clf__tol=1e-10,
        clf__max_iter=10_000,
    )


def test_weighted_fit_is_the_fit_on_every_copy(repeated: pd.DataFrame) -> None:
    inputs, labels = model_input(repeated), repeated["intent"].to_numpy()
    every_copy = _logreg_fixed_features().fit(inputs, labels)
    weighted, examples = fit_distinct(_logreg_fixed_features(), inputs, labels, TEXT_ONLY)

    assert examples.rows == repeated["text"].nunique() < len(repeated)
    assert examples.weights is not None and examples.weights.sum() == len(repeated)
    assert examples.examples == len(repeated)
    np.testing.assert_allclose(
        weighted.named_steps["clf"].coef_, every_copy.named_steps["clf"].coef_, atol=1e-3
    )
    np.testing.assert_allclose(
        weighted.predict_proba(inputs), every_copy.predict_proba(inputs), atol=1e-4
    )
    # The weights reach the estimator: the same distinct rows without them fit another model.
    unweighted = _logreg_fixed_features().fit(examples.inputs, examples.labels)
    gap = np.abs(unweighted.named_steps["clf"].coef_ - weighted.named_steps["clf"].coef_).max()
    assert gap > 0.1


def test_rows_are_distinct_by_the_columns_read_and_the_label(repeated: pd.DataFrame) -> None:
    labels = repeated["intent"].to_numpy()
    by_text = distinct_examples(model_input(repeated), labels, TEXT_ONLY)
    by_all = distinct_examples(model_input(repeated), labels, MODEL_INPUT_COLUMNS)
    assert by_text.rows == repeated["text"].nunique()
    assert by_all.rows == len(repeated)  # every copy has its own context
    counts = repeated["text"].value_counts()
    assert dict(zip(by_text.inputs["text"], by_text.weights, strict=True)) == counts.to_dict()


def test_a_label_with_few_distinct_rows_keeps_its_copies(repeated: pd.DataFrame) -> None:
    """The calibrated candidates cross-validate in 3 folds: each intent needs 3 rows."""
    thin = pd.DataFrame({"text": ["card lost", "lost my card"] * 5, "intent": "lost_card"})
    frame = pd.concat([repeated, thin.assign(context="{}")], ignore_index=True)
    inputs, labels = model_input(frame), frame["intent"].to_numpy()
    model, examples = fit_distinct(
        SEARCH_SPACE["tfidf_linearsvc_calibrated"].build(), inputs, labels, TEXT_ONLY
    )
    kept = examples.labels == "lost_card"
    assert kept.sum() == 10 and set(examples.weights[kept]) == {1.0}
    assert "lost_card" in model.classes_


def test_search_and_refit_fit_distinct_texts(repeated: pd.DataFrame) -> None:
    """The selection fit (it calibrates the temperature and fallback) and the registered refit
    both count each distinct text once in TF-IDF (with every copy, document frequencies
    would count copies): their word idf is that of the distinct texts."""
    cut = int(len(repeated) * 0.8)
    train, validation = repeated.iloc[:cut], repeated.iloc[cut:]
    found = search_then_refit(
        [SEARCH_SPACE["tfidf_logreg"]],
        train,
        validation,
        SelectionBudget(max_examples=100_000),
        SearchSettings(trials=1),
    )
    for model, texts in ((found.held_out, train), (found.refit, repeated)):
        word = model.named_steps["features"].named_transformers_["word"]
        expected = clone(word).fit(texts["text"].drop_duplicates())
        assert word.vocabulary_ == expected.vocabulary_
        np.testing.assert_allclose(word.idf_, expected.idf_)
    assert found.fitted_examples == len(repeated)


def _columns_read(transformer: ColumnTransformer) -> set[str]:
    read: set[str] = set()
    for _, _, columns in transformer.transformers:
        read |= {columns} if isinstance(columns, str) else set(columns)
    return read


@pytest.mark.parametrize("name", sorted(SEARCH_SPACE))
def test_a_candidate_reads_only_its_declared_columns(name: str) -> None:
    """Rows are merged when equal in the declared columns: a candidate reading another column
    would be fitted on the first row's value of it for every merged copy."""
    candidate = SEARCH_SPACE[name]
    features = candidate.build().named_steps["features"]
    if isinstance(features, ColumnTransformer) and features.remainder == "drop":
        assert _columns_read(features) <= set(candidate.reads)
        assert isinstance(features.transformers[0][1], TfidfVectorizer)
    else:  # reads the whole frame (a FeatureUnion of extractors): must declare every column
        assert candidate.reads == MODEL_INPUT_COLUMNS

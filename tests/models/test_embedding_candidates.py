"""The TF-IDF ⊕ sentence-embedding candidates and the profile that picks the default ones."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.pipeline import Pipeline

from features.embeddings import SentenceEmbeddings
from models.candidate_profile import profile_candidates
from models.candidates import DEFAULT_CANDIDATES, SEARCH_SPACE, resolve
from models.settings_errors import SettingsProblem
from pipelines.assets.training import TrainingConfig

EMBEDDING_CANDIDATES = ("tfidf_minilm_linearsvc", "tfidf_minilm_logreg", "tfidf_minilm_l3_svc_rbf")


def _embeds(pipeline: Pipeline) -> bool:
    features = pipeline.named_steps["features"]
    return any(isinstance(step, SentenceEmbeddings) for _, step, _ in features.transformers)


@pytest.mark.parametrize("name", EMBEDDING_CANDIDATES)
def test_an_embedding_candidate_fits_and_predicts_a_banking77_slice(small_slice, name):
    train = small_slice.groupby("category", group_keys=False).head(30)
    held_out = small_slice.drop(train.index)
    pipeline = SEARCH_SPACE[name].build()
    assert _embeds(pipeline)

    pipeline.fit(train[["text"]], train["category"].to_numpy())
    probabilities = pipeline.predict_proba(held_out[["text"]])
    assert probabilities.shape == (len(held_out), 6)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    predicted = pipeline.classes_[probabilities.argmax(axis=1)]
    assert (predicted == held_out["category"].to_numpy()).mean() >= 0.8


def test_the_default_profile_puts_the_embedding_candidate_first(monkeypatch):
    monkeypatch.delenv("TRAIN_MODEL_PROFILE", raising=False)
    assert profile_candidates() == list(DEFAULT_CANDIDATES)
    assert TrainingConfig().candidates == list(DEFAULT_CANDIDATES)
    assert _embeds(resolve(DEFAULT_CANDIDATES)[0].build())


def test_the_light_profile_keeps_tfidf_candidates_only(monkeypatch):
    monkeypatch.setenv("TRAIN_MODEL_PROFILE", "light")
    light = TrainingConfig().candidates
    assert light and light == profile_candidates()
    builds = [candidate.build() for candidate in resolve(light)]
    assert not any(_embeds(pipeline) for pipeline in builds)
    # Every TF-IDF candidate of the default profile is still there.
    assert set(light) == {n for n in DEFAULT_CANDIDATES if not _embeds(SEARCH_SPACE[n].build())}


def test_an_unknown_profile_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("TRAIN_MODEL_PROFILE", "heavy")
    with pytest.raises(SettingsProblem, match=r"^bad setting TRAIN_MODEL_PROFILE: Input should"):
        TrainingConfig()


def test_texts_arrive_as_a_frame_or_a_series(small_slice):
    texts = small_slice["text"].head(3)
    transformer = SentenceEmbeddings().fit(None)
    np.testing.assert_array_equal(
        transformer.transform(pd.DataFrame({"text": texts})), transformer.transform(texts)
    )

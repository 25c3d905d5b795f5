"""The second sentence view: the real paraphrase-MiniLM-L3-v2 ONNX file, offline."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io

from features import paraphrase
from features.embeddings import SentenceEmbeddings, SentenceEncoder, shared_encoder
from features.paraphrase import PARAPHRASE_L3, ParaphraseEmbeddings
from models.registry import TRUSTED_SKOPS_TYPES

TEXTS = [
    "How do I top up my card?",
    "I want to add money to my card",
    "What's the weather like in Paris tomorrow?",
]


def test_the_installed_model_yields_unit_vectors_that_know_paraphrases(
    monkeypatch: pytest.MonkeyPatch,
):
    # Offline: no hub, no network; the wheel's file, checked against its pinned sha256.
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    view = ParaphraseEmbeddings(weight=1.0).fit(None)
    vectors = view.transform(pd.Series(TEXTS))
    assert vectors.shape == (3, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert list(view.get_feature_names_out()[:2]) == ["l3_0", "l3_1"]


def test_it_is_a_view_of_its_own_beside_minilm():
    l3 = ParaphraseEmbeddings().fit(None).transform(TEXTS)
    minilm = SentenceEmbeddings().fit(None).transform(TEXTS)
    assert shared_encoder(PARAPHRASE_L3) is not shared_encoder()
    assert not np.allclose(l3, minilm)  # another model, not the cached MiniLM vectors


def test_a_skops_copy_gives_identical_vectors(tmp_path: Path):
    view = ParaphraseEmbeddings(weight=0.5).fit(None)
    before = view.transform(TEXTS)
    skops.io.dump(view, tmp_path / "v.skops")
    copy = skops.io.load(tmp_path / "v.skops", trusted=TRUSTED_SKOPS_TYPES)
    assert isinstance(copy, ParaphraseEmbeddings) and copy.weight == 0.5
    np.testing.assert_array_equal(copy.transform(TEXTS), before)


def test_a_swapped_model_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    swapped = tmp_path / paraphrase.MODEL_FILE
    swapped.write_bytes(b"not the model")
    spec = PARAPHRASE_L3.__class__(**{**PARAPHRASE_L3.__dict__, "locate": lambda: swapped})
    with pytest.raises(RuntimeError, match="is not the pinned"):
        SentenceEncoder(spec=spec).encode(["hello"])

"""Sentence embeddings: the real all-MiniLM-L6-v2 int8 model, its cache and its serialisation."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import skops.io

from features import embeddings
from features.embeddings import EmbeddingSettings, SentenceEmbeddings, SentenceEncoder
from models.registry import TRUSTED_SKOPS_TYPES


class CountingEncoder(SentenceEncoder):
    """The real encoder, counting the texts that reach the ONNX model."""

    def __init__(self, settings: EmbeddingSettings | None = None) -> None:
        super().__init__(settings)
        self.encoded: list[str] = []

    def run_batch(self, texts: list[str]) -> np.ndarray:
        self.encoded.extend(texts)
        return super().run_batch(texts)


def test_paraphrases_are_closer_than_unrelated_sentences():
    vectors = SentenceEmbeddings().transform(
        pd.Series(
            [
                "How do I top up my card?",
                "I want to add money to my card",
                "What's the weather like in Paris tomorrow?",
                "My card was declined at the shop",
                "The payment with my card got rejected",
            ]
        )
    )
    assert vectors.shape == (5, 384) and vectors.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(vectors, axis=1), 1.0, rtol=1e-5)
    similarity = vectors @ vectors.T
    assert similarity[0, 1] > similarity[0, 2] + 0.3
    assert similarity[3, 4] > similarity[3, 2] + 0.3
    assert similarity[3, 4] > similarity[3, 1]


def test_each_distinct_text_reaches_the_model_once():
    encoder = CountingEncoder()
    transformer = SentenceEmbeddings(weight=2.0).fit(None)
    transformer.encoder = encoder
    texts = pd.Series(["where is my card", "cancel my transfer", "where is my card"])

    first = transformer.transform(texts)
    assert sorted(encoder.encoded) == ["cancel my transfer", "where is my card"]
    second = transformer.transform(texts)
    assert len(encoder.encoded) == 2  # all from the cache
    np.testing.assert_array_equal(first, second)
    np.testing.assert_allclose(np.linalg.norm(first, axis=1), 2.0, rtol=1e-5)  # × weight
    transformer.transform(pd.Series(["cancel my transfer", "a new text"]))
    assert encoder.encoded[2:] == ["a new text"]


def test_the_cache_keeps_at_most_its_size():
    encoder = CountingEncoder(EmbeddingSettings(cache_size=2, batch_size=2))
    vectors = encoder.encode(["one", "two", "three"])  # three texts, two batches, two kept
    assert len(encoder.encoded) == 3
    again = encoder.encode(["three", "one"])  # "one" was the least recently used: evicted
    assert encoder.encoded[3:] == ["one"]
    np.testing.assert_allclose(again, vectors[[2, 0]], atol=1e-6)


@pytest.mark.parametrize("how", ["pickle", "skops"])
def test_a_serialised_transformer_gives_identical_vectors(tmp_path: Path, how: str):
    texts = ["I still have not received my new card", "Is there a fee for top ups?"]
    transformer = SentenceEmbeddings(weight=2.0).fit(None)
    transformer.encoder = CountingEncoder()  # never serialised: the copy uses the shared one
    before = transformer.transform(texts)
    if how == "pickle":
        copy = pickle.loads(pickle.dumps(transformer))
    else:
        skops.io.dump(transformer, tmp_path / "t.skops")
        copy = skops.io.load(tmp_path / "t.skops", trusted=TRUSTED_SKOPS_TYPES)
    assert "_encoder" not in copy.__dict__ and copy.weight == 2.0
    np.testing.assert_array_equal(copy.transform(texts), before)


def test_a_changed_tokenizer_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    swapped = tmp_path / "tokenizer.json"
    swapped.write_bytes(embeddings.TOKENIZER_FILE.read_bytes().replace(b"[UNK]", b"[UNX]", 1))
    monkeypatch.setattr(embeddings, "TOKENIZER_FILE", swapped)
    with pytest.raises(RuntimeError, match="is not the pinned"):
        SentenceEncoder().encode(["hello"])

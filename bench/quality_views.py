"""Issue 11 spike (3): a second sentence encoder beside MiniLM, and other linear heads.

Each variant is `VIEWS@HEAD`: VIEWS a `+`-joined list of `name*weight` embedding blocks (each
row L2-normalised, then × weight) put beside the product's word + char TF-IDF
(`word_char_tfidf()`); HEAD one of `svc` / `svc:C` (LinearSVC, squared hinge, the product),
`hinge:C` (LinearSVC, hinge loss), `cs:C` (Crammer-Singer LinearSVC), `sgd:ALPHA` (SGD with the
modified Huber loss), `bal:C` (LinearSVC with class_weight=balanced), `avg:C` (the mean of
LinearSVC decision functions, one fitted per embedding view, each beside the TF-IDF blocks),
`rbf:B` (the product's LinearSVC decision function plus B × an RBF-kernel SVC's one-vs-rest
decision function on the first view alone, a non-linear head on the embeddings).
`none` as VIEWS is TF-IDF only. Examples: `minilm*2@svc`, `minilm*2+l3*1@svc:0.3`.

Views are float32 .npy matrices, one row per text of train.csv / test.csv in file order, named
on the command line as `name=/path/prefix` (files `prefix-train.npy`, `prefix-test.npy`).
Chosen by stratified 5-fold CV on train.csv (seed 0); `--test` fits each variant on all of
train.csv and scores test.csv once (do that for CV winners only).

    nice -n 19 .venv/bin/python bench/quality_views.py --view minilm=/tmp/e-minilm \
        --view l3=/tmp/e-l3 --variants minilm*2@svc minilm*2+l3*1@svc
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
from sklearn.linear_model import SGDClassifier
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC, LinearSVC

from features.transformers import word_char_tfidf

logger = logging.getLogger("bench.quality_views")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"


@dataclass(frozen=True)
class Variant:
    """A parsed `VIEWS@HEAD` string."""

    views: tuple[tuple[str, float], ...]
    head: str
    arg: float | None

    @classmethod
    def parse(cls, text: str) -> Variant:
        """`minilm*2+l3*1@svc:0.3` → views ((minilm, 2), (l3, 1)), head svc, arg 0.3."""
        views_text, _, head_text = text.partition("@")
        views: list[tuple[str, float]] = []
        if views_text != "none":
            for part in views_text.split("+"):
                name, _, weight = part.partition("*")
                views.append((name, float(weight or 1)))
        head, _, arg = (head_text or "svc").partition(":")
        return cls(tuple(views), head, float(arg) if arg else None)


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm."""
    return rows / np.clip(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12, None)


def head_model(head: str, arg: float | None) -> LinearSVC | SGDClassifier:
    """The classifier a head name stands for."""
    if head in ("svc", "avg", "rbf"):
        return LinearSVC(C=arg or 0.3)
    if head == "hinge":
        return LinearSVC(C=arg or 0.3, loss="hinge", max_iter=5000)
    if head == "cs":
        return LinearSVC(C=arg or 0.3, multi_class="crammer_singer", max_iter=2000)
    if head == "bal":
        return LinearSVC(C=arg or 0.3, class_weight="balanced")
    if head == "sgd":
        return SGDClassifier(
            loss="modified_huber", alpha=arg or 1e-4, max_iter=50, tol=None, random_state=0
        )
    raise ValueError(f"unknown head {head!r}")


def fit_score(
    variant: Variant,
    texts: tuple[pd.DataFrame, pd.DataFrame],
    views: dict[str, tuple[np.ndarray, np.ndarray]],
    labels: tuple[np.ndarray, np.ndarray],
) -> float:
    """Accuracy of one variant fitted on the first of each pair, scored on the second."""
    vectorizer = word_char_tfidf()
    sparse_fit = vectorizer.fit_transform(texts[0][["text"]])
    sparse_score = vectorizer.transform(texts[1][["text"]])

    def blocks(chosen: tuple[tuple[str, float], ...], side: int) -> sparse.csr_matrix:
        base = sparse_fit if side == 0 else sparse_score
        dense = [weight * unit(views[name][side]) for name, weight in chosen]
        if not dense:
            return base.tocsr()
        return sparse.hstack([base, sparse.csr_matrix(np.hstack(dense))]).tocsr()

    if variant.head == "avg":
        total = None
        for view in variant.views:
            model = head_model("svc", variant.arg).fit(blocks((view,), 0), labels[0])
            scores = model.decision_function(blocks((view,), 1))
            total = scores if total is None else total + scores
        assert total is not None, "avg needs at least one view"
        predicted = model.classes_[total.argmax(axis=1)]
    elif variant.head == "rbf":
        model = head_model("svc", None).fit(blocks(variant.views, 0), labels[0])
        name = variant.views[0][0]
        kernel = SVC(C=10.0, kernel="rbf", gamma=1.0, decision_function_shape="ovr")
        kernel.fit(unit(views[name][0]), labels[0])
        assert list(kernel.classes_) == list(model.classes_), "both heads order classes alike"
        total = model.decision_function(blocks(variant.views, 1)) + (
            variant.arg or 1.0
        ) * kernel.decision_function(unit(views[name][1]))
        predicted = model.classes_[total.argmax(axis=1)]
    else:
        model = head_model(variant.head, variant.arg).fit(blocks(variant.views, 0), labels[0])
        predicted = model.predict(blocks(variant.views, 1))
    return float((predicted == labels[1]).mean())


def main() -> None:
    """CV (and optionally test) accuracy of each variant, one line each."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--view", action="append", default=[], help="name=/path/prefix")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--variants", nargs="+", default=["minilm*2@svc"])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--test", action="store_true", help="also fit on train.csv, score test")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    train, test = (pd.read_csv(args.data / f"{name}.csv") for name in ("train", "test"))
    arrays = {}
    for spec in args.view:
        name, _, prefix = spec.partition("=")
        arrays[name] = tuple(np.load(f"{prefix}-{split}.npy") for split in ("train", "test"))
    y_train, y_test = train["category"].to_numpy(), test["category"].to_numpy()
    splitter = StratifiedKFold(max(args.folds, 2), shuffle=True, random_state=0)
    folds = list(splitter.split(train, y_train)) if args.folds > 1 else []
    logger.info("load average %s", " ".join(f"{x:.1f}" for x in os.getloadavg()))
    for text in args.variants:
        variant, started = Variant.parse(text), time.process_time()
        scores = [
            fit_score(
                variant,
                (train.iloc[a], train.iloc[b]),
                {n: (v[0][a], v[0][b]) for n, v in arrays.items()},
                (y_train[a], y_train[b]),
            )
            for a, b in folds
        ]
        mean = np.mean(scores) if scores else float("nan")
        line = f"{text:28s} cv {mean:.4f} " + " ".join(f"{s:.4f}" for s in scores)
        if args.test:
            score = fit_score(variant, (train, test), arrays, (y_train, y_test))
            line += f"  test {score:.4f}"
        logger.info(
            "%s  (%.0f CPU s, load %.1f)", line, time.process_time() - started, os.getloadavg()[0]
        )


if __name__ == "__main__":
    main()

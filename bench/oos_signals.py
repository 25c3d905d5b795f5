"""Which fallback signal catches intents the model never saw (issue 11, out-of-scope target).

Usage: nice -n 5 python bench/oos_signals.py [--draws 3] [--seed 0] [--fraction 0.1]

Banking77 `train.csv`/`test.csv` from BANKING77_DIR. Each seeded draw holds out 10 % of the
intents (models/out_of_scope.holdout_draws): the champion (`tfidf_minilm_linearsvc`, built by
models/candidates.py, fitted by models/weighted_examples.fit_distinct as training does) is fitted
on train.csv without them; the test rows are the kept intents' test texts (in scope) and the
held-out intents' test texts (out of scope). Every signal is an "in-scope" score (higher: answer):
calibrated top probability (today's), top-1 − top-2 margin, −entropy, mean cosine of the MiniLM
embedding to its k nearest training embeddings, cosine to the predicted class's centroid,
−Mahalanobis distance to the nearest class mean (shared covariance), and two combinations whose
choices are made on a validation draw only: the kept intents' train rows are split again (8 more
intents as pseudo out-of-scope, 20 % of the others' rows as in scope), a second model is fitted
on the rest, and the combinations are tuned on its validation signals, never on the test intents.
Per signal: AUROC, in-scope coverage and answered in-scope accuracy at out-of-scope recall 0.80,
and out-of-scope recall (with coverage) at the largest coverage keeping answered accuracy ≥ 0.95.
Embeddings come from features/embeddings.shared_encoder(): one LRU, each text encoded once.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from sklearn.covariance import LedoitWolf
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score
from sklearn.preprocessing import StandardScaler

from features.embeddings import shared_encoder
from models.candidates import SEARCH_SPACE
from models.out_of_scope import OutOfScopeSettings, holdout_draws
from models.weighted_examples import fit_distinct

REPO_ROOT = Path(__file__).resolve().parents[1]
BANKING77 = Path(os.environ.get("BANKING77_DIR") or REPO_ROOT.parent / "shared/data/banking77")
CANDIDATE = SEARCH_SPACE["tfidf_minilm_linearsvc"]
RECALL_TARGET, ACCURACY_TARGET = 0.80, 0.95
PROBABILITY_SIGNALS = ("max_prob", "margin", "neg_entropy", "max_logit")
EMBEDDING_SIGNALS = ("knn1", "knn5", "centroid", "mahalanobis", "rel_mahalanobis")
BASE_SIGNALS = PROBABILITY_SIGNALS + EMBEDDING_SIGNALS
log = logging.getLogger("oos_signals")


@dataclass(frozen=True)
class Scored:
    """One model's signals on its in-scope and out-of-scope rows."""

    inside: dict[str, np.ndarray]  # signal → score per in-scope row (higher: more in scope)
    outside: dict[str, np.ndarray]
    correct: np.ndarray  # the in-scope rows' top intent is right


@dataclass(frozen=True)
class SignalResult:
    """A signal's figures on one draw."""

    signal: str
    draw: int
    auroc: float
    coverage_at_recall: float  # in-scope share answered when 80 % of out-of-scope falls back
    accuracy_at_recall: float  # answered in-scope accuracy there
    recall_at_accuracy: float  # out-of-scope recall at max coverage with accuracy ≥ 0.95
    coverage_at_accuracy: float


def load(folder: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    """train.csv and test.csv as (text, intent) frames."""
    frames = [pd.read_csv(folder / name) for name in ("train.csv", "test.csv")]
    return tuple(f.rename(columns={"category": "intent"})[["text", "intent"]] for f in frames)


def embed(texts: pd.Series) -> np.ndarray:
    """L2-normalised MiniLM vectors (the process's shared, cached encoder)."""
    return shared_encoder().encode(texts.tolist())


def probability_signals(probabilities: np.ndarray) -> dict[str, np.ndarray]:
    """Top probability, top-1 − top-2 margin and −entropy of calibrated probabilities."""
    ordered = np.sort(probabilities, axis=1)
    clipped = np.clip(probabilities, 1e-12, 1.0)
    return {
        "max_prob": ordered[:, -1],
        "margin": ordered[:, -1] - ordered[:, -2],
        "neg_entropy": (clipped * np.log(clipped)).sum(axis=1),
    }


class EmbeddingSpace:
    """The training embeddings and their class statistics, for the distance signals."""

    def __init__(self, vectors: np.ndarray, labels: np.ndarray, classes: np.ndarray) -> None:
        self.vectors = vectors
        self.classes = classes
        means = np.stack([vectors[labels == c].mean(axis=0) for c in classes])
        self.centroids = means / np.linalg.norm(means, axis=1, keepdims=True)
        centred = vectors - means[np.searchsorted(classes, labels)]
        # Shrunk shared covariance (Lee et al. 2018 use the plain one; 384 dims, ~9k rows).
        self.precision = LedoitWolf().fit(centred).precision_
        self.means = means
        # Relative Mahalanobis (Ren et al. 2021): minus the distance under one background
        # Gaussian of all training vectors, which removes "this text is unusual" in general.
        background = LedoitWolf().fit(vectors)
        self.background = (background.location_, background.precision_)

    def signals(self, queries: np.ndarray, predicted: np.ndarray) -> dict[str, np.ndarray]:
        """kNN cosine (k=1, 5), predicted-centroid cosine, −min Mahalanobis distance."""
        similarity = queries @ self.vectors.T
        nearest = -np.partition(-similarity, 4, axis=1)[:, :5]
        centroid = np.einsum("ij,ij->i", queries, self.centroids[predicted])
        # (x−μ)ᵀP(x−μ) = xᵀPx − 2xᵀPμ + μᵀPμ, for every class at once.
        projected = queries @ self.precision
        distance = (
            np.einsum("ij,ij->i", projected, queries)[:, None]
            - 2 * projected @ self.means.T
            + np.einsum("ij,jk,ik->i", self.means, self.precision, self.means)[None, :]
        )
        centre, precision = self.background
        offset = queries - centre
        background = np.einsum("ij,jk,ik->i", offset, precision, offset)
        return {
            "knn1": nearest.max(axis=1),
            "knn5": nearest.mean(axis=1),
            "centroid": centroid,
            "mahalanobis": -distance.min(axis=1),
            "rel_mahalanobis": background - distance.min(axis=1),
        }


def score(fit_rows: pd.DataFrame, inside: pd.DataFrame, outside: pd.DataFrame) -> Scored:
    """Fit the champion on `fit_rows`; every base signal on the in- and out-of-scope rows."""
    started = time.perf_counter()
    model, _ = fit_distinct(
        CANDIDATE.build(), fit_rows[["text"]], fit_rows["intent"].to_numpy(), CANDIDATE.reads
    )
    log.info("fitted on %d rows in %.1f s", len(fit_rows), time.perf_counter() - started)
    classes = np.asarray(model.classes_)
    space = EmbeddingSpace(embed(fit_rows["text"]), fit_rows["intent"].to_numpy(), classes)
    result = []
    for rows in (inside, outside):
        probabilities = model.predict_proba(rows[["text"]])  # calibrated by the pipeline
        predicted = probabilities.argmax(axis=1)
        # MaxLogit (Hendrycks et al. 2022): the LinearSVC's top decision value, before softmax.
        svc = model[-1].calibrated_classifiers_[0].estimator
        logits = svc.decision_function(model[:-1].transform(rows[["text"]]))
        result.append(
            probability_signals(probabilities)
            | {"max_logit": logits.max(axis=1)}
            | space.signals(embed(rows["text"]), predicted)
        )
        if rows is inside:
            correct = classes[predicted] == rows["intent"].to_numpy()
    return Scored(result[0], result[1], correct)


def auroc(inside: np.ndarray, outside: np.ndarray) -> float:
    """Probability that an in-scope row outscores an out-of-scope one."""
    labels = np.r_[np.ones(len(inside)), np.zeros(len(outside))]
    return float(roc_auc_score(labels, np.r_[inside, outside]))


def at_recall(inside: np.ndarray, outside: np.ndarray, correct: np.ndarray) -> tuple[float, float]:
    """Coverage and answered accuracy when rows scoring ≤ the out-of-scope 80th percentile
    fall back (at least 80 % of out-of-scope rows do)."""
    cut = np.sort(outside)[int(np.ceil(RECALL_TARGET * len(outside))) - 1]
    answered = inside > cut
    return float(answered.mean()), float(correct[answered].mean()) if answered.any() else 0.0


def at_accuracy(
    inside: np.ndarray, outside: np.ndarray, correct: np.ndarray
) -> tuple[float, float]:
    """Out-of-scope recall and coverage at the lowest cut keeping answered accuracy ≥ 0.95."""
    order = np.argsort(-inside)
    prefix = np.cumsum(correct[order]) / np.arange(1, len(order) + 1)
    meets = np.flatnonzero(prefix >= ACCURACY_TARGET)
    if not meets.size:
        return 1.0, 0.0
    cut = inside[order][meets[-1]]
    return float((outside < cut).mean()), float((inside >= cut).mean())


def add_combinations(test: Scored, validation: Scored) -> tuple[list[str], str]:
    """Add `rank_best2` and `logreg` to `test`'s signals, both chosen on `validation` only."""
    by_auroc = sorted(
        BASE_SIGNALS, key=lambda s: -auroc(validation.inside[s], validation.outside[s])
    )
    best = by_auroc[:2]
    # Each signal as its percentile among the validation rows' values (a fixed reference, as
    # serving would hold it), then averaged.
    reference = {s: np.sort(np.r_[validation.inside[s], validation.outside[s]]) for s in best}
    for part in (test.inside, test.outside):
        part["rank_best2"] = sum(
            np.searchsorted(reference[s], part[s]) / len(reference[s]) for s in best
        )
    features = np.r_[
        np.column_stack([validation.inside[s] for s in BASE_SIGNALS]),
        np.column_stack([validation.outside[s] for s in BASE_SIGNALS]),
    ]
    labels = np.r_[np.ones(len(validation.correct)), np.zeros(len(validation.outside["knn1"]))]
    scaler = StandardScaler().fit(features)
    regression = LogisticRegression(C=1.0, max_iter=1000, class_weight="balanced")
    regression.fit(scaler.transform(features), labels)
    for part in (test.inside, test.outside):
        matrix = scaler.transform(np.column_stack([part[s] for s in BASE_SIGNALS]))
        part["logreg"] = regression.decision_function(matrix)
    weights = ", ".join(
        f"{s} {w:+.2f}" for s, w in zip(BASE_SIGNALS, regression.coef_[0], strict=True)
    )
    return best, weights


def validation_split(
    kept: pd.DataFrame, seed: int
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """(fit rows, in-scope rows, pseudo out-of-scope rows) carved from the kept intents' train."""
    intents = sorted(kept["intent"].unique())
    settings = OutOfScopeSettings(draws=1, holdout_fraction=8 / len(intents), seed=seed)
    pseudo = holdout_draws(intents, settings)[0]
    outside = kept["intent"].isin(pseudo)
    rest = kept[~outside]
    inside = rest.groupby("intent", group_keys=False).sample(frac=0.2, random_state=seed)
    return rest.drop(inside.index), inside, kept[outside]


def run_draw(
    number: int, held_out: list[str], train: pd.DataFrame, test: pd.DataFrame, seed: int
) -> list[SignalResult]:
    """Every signal's figures on one draw (a validation fit, then the test fit)."""
    kept = train[~train["intent"].isin(held_out)]
    validation = score(*validation_split(kept, seed + 1000 + number))
    outside = test["intent"].isin(held_out)
    scored = score(kept, test[~outside], test[outside])
    best, weights = add_combinations(scored, validation)
    log.info("draw %d: held out %s; rank_best2 of %s; logreg %s", number, held_out, best, weights)
    results = []
    for signal in scored.inside:
        inside, out = scored.inside[signal], scored.outside[signal]
        coverage, accuracy = at_recall(inside, out, scored.correct)
        recall, covered = at_accuracy(inside, out, scored.correct)
        results.append(
            SignalResult(signal, number, auroc(inside, out), coverage, accuracy, recall, covered)
        )
    log.info(
        "draw %d: in-scope top-1 accuracy %.4f, %d in / %d out of scope",
        number,
        scored.correct.mean(),
        len(scored.correct),
        int(outside.sum()),
    )
    return results


def table(results: list[SignalResult]) -> str:
    """Markdown table: mean (min over draws) of every figure per signal."""
    frame = pd.DataFrame([asdict(r) for r in results]).drop(columns="draw")
    grouped = frame.groupby("signal", sort=False)
    mean, low = grouped.mean(), grouped.min()
    header = (
        "| signal | AUROC | coverage @ recall 0.80 | answered acc @ recall 0.80 "
        "| recall @ acc 0.95 | coverage @ acc 0.95 |\n|---|---|---|---|---|---|"
    )
    cells = {
        n: [f"{mean.at[n, c]:.3f} ({low.at[n, c]:.3f})" for c in mean.columns] for n in mean.index
    }
    rows = [f"| {name} | {' | '.join(values)} |" for name, values in cells.items()]
    return "\n".join([header, *rows])


def main() -> None:
    """Parse arguments, run the draws, print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--draws", type=int, default=3)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--fraction", type=float, default=0.1)
    parser.add_argument("--data", type=Path, default=BANKING77)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    train, test = load(args.data)
    started = time.perf_counter()
    embed(pd.concat([train["text"], test["text"]]))  # every text once, into the encoder's LRU
    log.info("encoded %d texts in %.1f s", len(train) + len(test), time.perf_counter() - started)
    settings = OutOfScopeSettings(draws=args.draws, holdout_fraction=args.fraction, seed=args.seed)
    draws = holdout_draws(sorted(train["intent"].unique()), settings)
    results = [
        r for n, held in enumerate(draws, 1) for r in run_draw(n, held, train, test, args.seed)
    ]
    print(table(results))
    log.info("all draws in %.1f s", time.perf_counter() - started)


if __name__ == "__main__":
    main()

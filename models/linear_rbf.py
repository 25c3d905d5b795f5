"""A linear SVM on every feature plus an RBF SVM on the sentence-embedding blocks (issue 11).

`LinearRbfClassifier` sums two decision functions: LinearSVC(C=c) on the whole feature matrix
(word + char TF-IDF ⊕ embeddings), and `rbf_weight` × an RBF-kernel SVC on the embedding blocks
alone, each block's rows L2-normalised, concatenated and normalised again (so the blocks' weights
in the linear part do not tilt the kernel). Chosen by 5-fold CV on Banking77's train.csv
(bench/README.md, "Towards 0.945 top-1 (4)": C 0.3, RBF C 10, gamma 1, weight 0.2). With
`knn_weight` > 0 a third part, fitted by remembering: per class, the highest cosine between a
row's block `knn_block` (MiniLM) and that block of the class's training rows (section (5):
weight 2, +0.18 CV points).

The embedding blocks are the *trailing* columns of the matrix: the candidate's ColumnTransformer
appends them after the TF-IDF blocks (models/candidates.py), and `rbf_blocks` gives their widths
from the transformers' own `spec.dimensions`. `fit` checks that each such block has rows of one
norm (an embedding block is unit vectors × its weight; TF-IDF columns are not), so a matrix laid
out otherwise is refused rather than silently fed to the kernel.
"""

from __future__ import annotations

import functools
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
import scipy.sparse as sp
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.svm import SVC, LinearSVC
from sklearn.utils.validation import check_is_fitted

_NORM_TOLERANCE = 1e-3  # float32 embeddings: a row's norm is its block's weight to ~1e-6
_KNN_CHUNK = 1024  # rows scored against the bank at once: bounds the (rows × bank) product


def _trailing_dense(matrix: Any, width: int) -> np.ndarray:
    """The last `width` columns of a sparse or dense matrix, as a dense float64 array."""
    if sp.issparse(matrix):
        rows: Any = matrix  # (issparse narrows to an ABC the stubs give no methods)
        rows = rows.tocsr()  # a CSR input is not copied
        return np.asarray(rows[:, rows.shape[1] - width :].toarray(), dtype=np.float64)
    array = np.asarray(matrix, dtype=np.float64)
    return array[:, array.shape[1] - width :]


@functools.lru_cache(maxsize=8)
def _pair_members(n_classes: int) -> tuple[np.ndarray, np.ndarray]:
    """One-hot (pairs × classes) of each pair's first and second class, in libsvm's order."""
    first, second = np.triu_indices(n_classes, 1)
    to_first = np.zeros((first.size, n_classes))
    to_first[np.arange(first.size), first] = 1.0
    to_second = np.zeros((first.size, n_classes))
    to_second[np.arange(first.size), second] = 1.0
    return to_first, to_second


def ovr_scores(ovo: np.ndarray, n_classes: int) -> np.ndarray:
    """libsvm's one-vs-one scores → scikit-learn's one-vs-rest shape, as `SVC` computes it
    (votes plus squashed summed confidences), vectorised: scikit-learn's own transform loops in
    Python over the 77 × 76 / 2 class pairs, ~30 ms per call whatever the rows
    (bench/rbf_cost.py); this one costs ~0.2 ms per single row."""
    to_first, to_second = _pair_members(n_classes)
    wins = (ovo >= 0).astype(np.float64)
    votes = wins @ to_first + (1.0 - wins) @ to_second
    confidences = ovo @ (to_first - to_second)
    return np.asarray(votes + confidences / (3 * (np.abs(confidences) + 1)))


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.clip(np.linalg.norm(rows, axis=1, keepdims=True), 1e-12, None)


class LinearRbfClassifier(ClassifierMixin, BaseEstimator):
    """LinearSVC on all columns + `rbf_weight` × RBF SVC on the trailing embedding blocks."""

    def __init__(
        self,
        c: float = 0.3,
        rbf_c: float = 10.0,
        gamma: float = 1.0,
        rbf_weight: float = 0.2,
        rbf_blocks: tuple[int, ...] = (384,),
        knn_weight: float = 0.0,
        knn_block: int = 0,
    ) -> None:
        self.c = c
        self.rbf_c = rbf_c
        self.gamma = gamma
        self.rbf_weight = rbf_weight
        self.rbf_blocks = rbf_blocks
        self.knn_weight = knn_weight
        self.knn_block = knn_block

    def kernel_rows(self, matrix: Any, check: bool = False) -> np.ndarray:
        """The RBF part's input: each trailing block's rows made unit, joined, made unit."""
        return _unit(np.hstack(self.unit_blocks(matrix, check)))

    def unit_blocks(self, matrix: Any, check: bool = False) -> list[np.ndarray]:
        """Each trailing embedding block, its rows made unit.

        `check`: refuse blocks whose rows are not of one norm (not embedding columns).
        """
        widths = [int(width) for width in self.rbf_blocks]
        if not widths or min(widths) <= 0 or sum(widths) > matrix.shape[1]:
            raise ValueError(f"rbf_blocks {self.rbf_blocks} do not fit {matrix.shape[1]} columns")
        trailing = _trailing_dense(matrix, sum(widths))
        blocks = np.split(trailing, np.cumsum(widths)[:-1], axis=1)
        if check:
            for number, block in enumerate(blocks):
                norms = np.linalg.norm(block, axis=1)
                if norms.size and (
                    norms.max() <= 0 or np.ptp(norms) > _NORM_TOLERANCE * norms.max()
                ):
                    raise ValueError(
                        f"trailing block {number} ({widths[number]} columns) has rows of "
                        "unequal norms: not an embedding block (see models/linear_rbf.py)"
                    )
        return [_unit(block) for block in blocks]

    def fit(self, matrix: Any, y: Any, sample_weight: Any = None) -> LinearRbfClassifier:
        """Fit both parts on the same rows (and weights: a row fitted once for its copies).

        The RBF part fits on a second thread while the linear part fits on this one: libsvm and
        liblinear release the GIL, so on two cores the fit takes the longer part's time, not
        the sum.
        """
        blocks = self.unit_blocks(matrix, check=True)
        rows = _unit(np.hstack(blocks))
        rbf = SVC(C=self.rbf_c, kernel="rbf", gamma=self.gamma, decision_function_shape="ovo")
        with ThreadPoolExecutor(max_workers=1, thread_name_prefix="rbf-fit") as pool:
            kernel = pool.submit(rbf.fit, rows, y, sample_weight=sample_weight)
            self.linear_ = LinearSVC(C=self.c).fit(matrix, y, sample_weight=sample_weight)
            kernel.result()
        if not np.array_equal(self.linear_.classes_, rbf.classes_):
            raise ValueError("the two parts learnt different classes")  # cannot happen: same y
        self.classes_ = self.linear_.classes_
        self._keep_kernel(rbf)
        self.n_features_in_ = matrix.shape[1]
        if self.knn_weight:
            self._remember(blocks[self.knn_block], y)
        return self

    def _keep_kernel(self, rbf: SVC) -> None:
        """Keep what the RBF part's scores need, in float32, and not the SVC itself.

        libsvm scores one row at a time (~4 ms a row here, whatever the batch: the served
        micro-batches gained nothing); as a matrix product a batch shares one pass over the
        support vectors, and float32 halves the model (bench/rbf_cost.py: 1.6 ms a single row).
        """
        vectors = np.asarray(rbf.support_vectors_, dtype=np.float32)
        self.support_vectors_ = vectors
        self.support_norms_ = np.einsum("ij,ij->i", vectors, vectors)
        self.dual_coef_ = np.asarray(rbf.dual_coef_, dtype=np.float32)
        self.intercept_ = np.asarray(rbf.intercept_, dtype=np.float64)
        self.support_starts_ = np.concatenate([[0], np.cumsum(rbf.n_support_)])

    def pair_scores(self, rows: np.ndarray) -> np.ndarray:
        """The RBF part's one-vs-one scores (rows × class pairs, libsvm's pair order), as
        `SVC.decision_function` gives them (to float32 rounding), from the kept arrays."""
        x = np.asarray(rows, dtype=np.float32)
        distances = (
            np.einsum("ij,ij->i", x, x)[:, None]
            + self.support_norms_[None, :]
            - 2.0 * (x @ self.support_vectors_.T)
        )
        kernel = np.exp(-np.float32(self.gamma) * np.maximum(distances, 0.0))
        n_classes = len(self.classes_)
        starts = self.support_starts_
        # by_class[:, c, k]: class c's support vectors' pull on the k-th pair c is part of.
        by_class = np.empty((x.shape[0], n_classes, n_classes - 1), dtype=np.float64)
        for c in range(n_classes):
            block = slice(starts[c], starts[c + 1])
            by_class[:, c, :] = kernel[:, block] @ self.dual_coef_[:, block].T
        first, second = np.triu_indices(n_classes, 1)
        return np.asarray(
            by_class[:, first, second - 1] + by_class[:, second, first] + self.intercept_
        )

    def _remember(self, vectors: np.ndarray, y: Any) -> None:
        """The nearest-neighbour bank: the rows' unit vectors grouped by class, in classes_
        order, and where each class starts."""
        labels = np.searchsorted(self.classes_, np.asarray(y))
        order = np.argsort(labels, kind="stable")
        self.bank_ = np.ascontiguousarray(vectors[order], dtype=np.float32)
        self.bank_starts_ = np.searchsorted(labels[order], np.arange(len(self.classes_)))

    def neighbour_scores(self, matrix: Any) -> np.ndarray:
        """Per class, the highest cosine of a row's `knn_block` vector to the class's bank."""
        check_is_fitted(self, "bank_")
        vectors = self.unit_blocks(matrix)[self.knn_block].astype(np.float32)
        out = np.empty((vectors.shape[0], len(self.classes_)), dtype=np.float64)
        for start in range(0, vectors.shape[0], _KNN_CHUNK):
            cosines = vectors[start : start + _KNN_CHUNK] @ self.bank_.T
            out[start : start + _KNN_CHUNK] = np.maximum.reduceat(
                cosines, self.bank_starts_, axis=1
            )
        return out

    def decision_function(self, matrix: Any) -> np.ndarray:
        """Summed scores, one column per class (one score per row for two classes)."""
        check_is_fitted(self, "support_vectors_")
        linear = self.linear_.decision_function(matrix)
        ovo = self.pair_scores(self.kernel_rows(matrix))
        # Two classes: one score per row, for the second class (as SVC's).
        n_classes = len(self.classes_)
        kernel = ovr_scores(ovo, n_classes) if n_classes > 2 else ovo[:, 0]
        scores = linear + self.rbf_weight * kernel
        if self.knn_weight:
            nearest = self.neighbour_scores(matrix)
            # Two classes: one score per row, for the second class (as the other parts').
            scores = scores + self.knn_weight * (
                nearest if nearest.shape[1] > 2 else nearest[:, 1] - nearest[:, 0]
            )
        return np.asarray(scores)

    def predict(self, matrix: Any) -> np.ndarray:
        """The class of the highest summed score."""
        scores = self.decision_function(matrix)
        if scores.ndim == 1:
            return np.asarray(self.classes_[(scores > 0).astype(int)])
        return np.asarray(self.classes_[np.argmax(scores, axis=1)])

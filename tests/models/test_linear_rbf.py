"""The linear + RBF head on the embedding columns (models/linear_rbf.py)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import scipy.sparse as sp
import skops.io
from sklearn.calibration import CalibratedClassifierCV
from sklearn.svm import SVC

from models.linear_rbf import LinearRbfClassifier, ovr_scores
from models.registry import TRUSTED_SKOPS_TYPES


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=1, keepdims=True)


def _data(seed: int, rows: int = 240, classes: int = 4) -> tuple[sp.csr_matrix, np.ndarray]:
    """Sparse noise columns, then two embedding blocks (× 2 and × 1) that hold the class on a
    ring: a class is two opposite arcs, which no linear boundary separates and a kernel does."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, classes, rows)
    angle = (y + rng.uniform(-0.3, 0.3, rows)) * np.pi / classes + np.pi * rng.integers(0, 2, rows)
    ring = np.c_[np.cos(angle), np.sin(angle)]
    first = 2.0 * _unit(np.hstack([ring, 0.05 * rng.normal(size=(rows, 6))]))
    second = _unit(np.hstack([ring, 0.05 * rng.normal(size=(rows, 4))]))
    noise = sp.random(rows, 30, density=0.1, random_state=seed, format="csr")
    return sp.hstack([noise, first, second], format="csr"), np.array([f"c{k}" for k in y])


def test_the_kernel_part_learns_what_the_linear_part_cannot():
    train_x, train_y = _data(0)
    test_x, test_y = _data(1)
    head = LinearRbfClassifier(c=0.3, rbf_c=10.0, gamma=1.0, rbf_weight=1.0, rbf_blocks=(8, 6))
    head.fit(train_x, train_y)
    linear_only = (head.linear_.predict(test_x) == test_y).mean()
    assert (head.predict(test_x) == test_y).mean() >= 0.9 > linear_only + 0.2
    scores = head.decision_function(test_x)
    assert scores.shape == (test_x.shape[0], 4)
    assert list(head.classes_) == ["c0", "c1", "c2", "c3"]
    # Dense input gives the same scores as sparse.
    np.testing.assert_allclose(head.decision_function(test_x.toarray()), scores, rtol=1e-6)


def test_columns_that_are_not_embedding_blocks_are_refused():
    matrix, y = _data(0)
    with pytest.raises(ValueError, match="not an embedding block"):
        LinearRbfClassifier(rbf_blocks=(8, 6, 10)).fit(matrix, y)  # reaches into the noise
    with pytest.raises(ValueError, match="do not fit"):
        LinearRbfClassifier(rbf_blocks=(1000,)).fit(matrix, y)


def test_a_calibrated_head_survives_a_skops_round_trip(tmp_path: Path):
    train_x, train_y = _data(0)
    test_x, _ = _data(1)
    head = LinearRbfClassifier(rbf_weight=0.2, rbf_blocks=(8, 6))
    model = CalibratedClassifierCV(head, method="temperature", ensemble=False, cv=3)
    model.fit(train_x, train_y)
    skops.io.dump(model, tmp_path / "m.skops")
    copy = skops.io.load(tmp_path / "m.skops", trusted=TRUSTED_SKOPS_TYPES)
    probabilities = copy.predict_proba(test_x)
    np.testing.assert_array_equal(probabilities, model.predict_proba(test_x))
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_a_row_weighted_twice_counts_as_two_copies():
    matrix, y = _data(0, rows=120)
    test_x, _ = _data(1)
    weights = np.where(np.arange(120) % 3 == 0, 2.0, 1.0)
    repeated = np.repeat(np.arange(120), weights.astype(int))
    head = LinearRbfClassifier(rbf_weight=0.5, rbf_blocks=(8, 6))
    weighted = head.fit(matrix, y, sample_weight=weights).decision_function(test_x)
    copied = LinearRbfClassifier(rbf_weight=0.5, rbf_blocks=(8, 6))
    copied.fit(matrix[repeated], y[repeated])
    unweighted = LinearRbfClassifier(rbf_weight=0.5, rbf_blocks=(8, 6)).fit(matrix, y)
    gap = np.abs(weighted - copied.decision_function(test_x)).max()
    assert gap < 0.05 * np.abs(weighted - unweighted.decision_function(test_x)).max()


def test_the_vectorised_one_vs_rest_scores_are_those_of_scikit_learn():
    rng = np.random.default_rng(3)
    rows = _unit(rng.normal(size=(300, 5)))
    y = rng.integers(0, 7, 300)
    ovo = SVC(gamma=2.0, decision_function_shape="ovo").fit(rows, y)
    ovr = SVC(gamma=2.0, decision_function_shape="ovr").fit(rows, y)
    np.testing.assert_allclose(
        ovr_scores(ovo.decision_function(rows[:20]), 7), ovr.decision_function(rows[:20]), atol=1e-9
    )


def test_the_neighbour_part_scores_each_class_by_its_nearest_training_row(tmp_path: Path):
    train_x, train_y = _data(0)
    test_x, _ = _data(1, rows=50)
    blocks = (8, 6)
    head = LinearRbfClassifier(rbf_blocks=blocks, knn_weight=2.0, knn_block=0)
    head.fit(train_x, train_y)
    first = _unit(train_x.toarray()[:, 30:38])  # block 0: the columns after the 30 noise ones
    query = _unit(test_x.toarray()[:, 30:38])
    expected = np.stack([(query @ first[train_y == c].T).max(axis=1) for c in head.classes_], 1)
    np.testing.assert_allclose(head.neighbour_scores(test_x), expected, atol=1e-5)
    summed = head.decision_function(test_x)
    skops.io.dump(head, tmp_path / "h.skops")
    copy = skops.io.load(tmp_path / "h.skops", trusted=TRUSTED_SKOPS_TYPES)
    np.testing.assert_array_equal(copy.decision_function(test_x), summed)
    without = head.set_params(knn_weight=0.0).decision_function(test_x)  # the same fitted parts
    np.testing.assert_allclose(summed, without + 2.0 * expected, atol=1e-5)


@pytest.mark.parametrize("classes", [2, 5])
def test_the_kept_kernel_arrays_score_as_the_fitted_svc(classes: int):
    rng = np.random.default_rng(classes)
    rows = _unit(rng.normal(size=(200, 6)))
    y = rng.integers(0, classes, 200)
    svc = SVC(C=10.0, gamma=1.0, decision_function_shape="ovo").fit(rows, y)
    head = LinearRbfClassifier(gamma=1.0)
    head.classes_ = svc.classes_
    head._keep_kernel(svc)
    expected = np.atleast_2d(svc.decision_function(rows[:40]))
    expected = expected.T if classes == 2 else expected
    np.testing.assert_allclose(head.pair_scores(rows[:40]), expected, atol=1e-4)
    # A batch scores each row as it is scored alone.
    alone = np.vstack([head.pair_scores(rows[i : i + 1]) for i in range(40)])
    np.testing.assert_allclose(head.pair_scores(rows[:40]), alone, atol=1e-4)

"""How far a model's confidence can be trusted, and temperature scaling to make it trustworthy.

Expected calibration error (ECE) follows Guo et al. 2017 ("On Calibration of Modern Neural
Networks"): the top-class confidences are put in `bins` equal-width bins over [0, 1] (a bin holds
(lower, upper], the first one also 0), and ECE is the example-weighted mean of
|accuracy − mean confidence| over the bins. 15 bins by default, as in that paper, so figures are
comparable with published ones; `reliability_bins` is the same table, for a reliability diagram.

Temperature scaling divides a model's log-probabilities by one scalar T (> 1 softens an
over-confident model) chosen to minimise the negative log-likelihood of held-out labels; the
ranking of the intents, hence accuracy, is unchanged. `TemperatureScaledClassifier` wraps any
scikit-learn classifier with `predict_proba` so the logged pipeline, the pyfunc model and serving
use the calibrated probabilities with no change. Pure: no MLflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.optimize import minimize_scalar
from scipy.special import log_softmax, softmax
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.pipeline import Pipeline

DEFAULT_BINS = 15
# Probabilities are clipped before their log: a class a model gives exactly 0 (a random forest
# does) would otherwise be -inf, and any temperature would leave it at 0.
_FLOOR = 1e-12
# The temperatures searched, as log T: 0.05 ≤ T ≤ 20 covers every model seen here by far.
_LOG_T_BOUNDS = (float(np.log(0.05)), float(np.log(20.0)))


@dataclass(frozen=True)
class ReliabilityBin:
    """One equal-width confidence bin: its edges, how many predictions fall in it, and how
    accurate they were against how confident."""

    lower: float
    upper: float
    count: int
    mean_confidence: float  # 0.0 for an empty bin
    accuracy: float  # 0.0 for an empty bin

    @property
    def gap(self) -> float:
        """|accuracy − mean confidence| (0 for an empty bin)."""
        return abs(self.accuracy - self.mean_confidence) if self.count else 0.0

    def to_dict(self) -> dict[str, float]:
        """The row as the logged reliability table holds it."""
        return asdict(self) | {"gap": self.gap}


def _checked(confidences: np.ndarray, correct: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    confidences = np.asarray(confidences, dtype=float).ravel()
    correct = np.asarray(correct, dtype=bool).ravel()
    if confidences.shape != correct.shape:
        raise ValueError(
            f"{len(confidences)} confidences but {len(correct)} correctness flags: one per row"
        )
    if confidences.size and (np.nanmin(confidences) < 0 or np.nanmax(confidences) > 1):
        raise ValueError("confidences must lie in [0, 1]")
    if np.isnan(confidences).any():
        raise ValueError("confidences contain NaN")
    return confidences, correct


def reliability_bins(
    confidences: np.ndarray, correct: np.ndarray, bins: int = DEFAULT_BINS
) -> list[ReliabilityBin]:
    """The reliability table: `bins` equal-width bins over [0, 1], empty ones included."""
    if bins < 1:
        raise ValueError(f"bins must be at least 1, got {bins}")
    confidences, correct = _checked(confidences, correct)
    edges = np.linspace(0.0, 1.0, bins + 1)
    # (lower, upper] bins; a confidence of exactly 0 joins the first one.
    index = np.clip(np.searchsorted(edges, confidences, side="left") - 1, 0, bins - 1)
    table = []
    for number in range(bins):
        members = index == number
        count = int(members.sum())
        table.append(
            ReliabilityBin(
                lower=float(edges[number]),
                upper=float(edges[number + 1]),
                count=count,
                mean_confidence=float(confidences[members].mean()) if count else 0.0,
                accuracy=float(correct[members].mean()) if count else 0.0,
            )
        )
    return table


def expected_calibration_error(
    confidences: np.ndarray, correct: np.ndarray, bins: int = DEFAULT_BINS
) -> float:
    """ECE over `bins` equal-width bins: Σ (n_bin / n) · |accuracy_bin − confidence_bin|.

    `confidences` are the top-class probabilities, `correct` whether each top class was right.
    0.0 for no rows.
    """
    return _weighted_gap(reliability_bins(confidences, correct, bins))


def _weighted_gap(table: list[ReliabilityBin]) -> float:
    total = sum(b.count for b in table)
    return float(sum(b.count * b.gap for b in table) / total) if total else 0.0


def top_confidence(probabilities: np.ndarray) -> np.ndarray:
    """The top-class probability of each row of a probability matrix."""
    return np.asarray(probabilities, dtype=float).max(axis=1)


def scale_probabilities(probabilities: np.ndarray, temperature: float) -> np.ndarray:
    """softmax(log p / T): the probabilities a model would give with its logits divided by T.

    log p differs from the logits by a per-row constant, which softmax ignores, so this is exact
    for any model whose probabilities are a softmax (LogisticRegression) and a consistent
    definition for any other.
    """
    if not temperature > 0:
        raise ValueError(f"temperature must be positive, got {temperature}")
    logits = np.log(np.clip(np.asarray(probabilities, dtype=float), _FLOOR, 1.0))
    return softmax(logits / temperature, axis=1)


def negative_log_likelihood(
    probabilities: np.ndarray, true_index: np.ndarray, temperature: float
) -> float:
    """Mean −log p(true class) after scaling by `temperature`."""
    logits = np.log(np.clip(np.asarray(probabilities, dtype=float), _FLOOR, 1.0))
    scaled = log_softmax(logits / temperature, axis=1)
    return float(-scaled[np.arange(len(true_index)), true_index].mean())


def fit_temperature(probabilities: np.ndarray, true_index: np.ndarray) -> float:
    """The T minimising held-out NLL (a bounded 1-D search over log T, 0.05 ≤ T ≤ 20).

    `true_index` is each row's true class as a column index of `probabilities`. 1.0 (no change)
    for no rows.
    """
    true_index = np.asarray(true_index, dtype=int)
    if len(true_index) == 0:
        return 1.0
    result = minimize_scalar(
        lambda log_t: negative_log_likelihood(probabilities, true_index, float(np.exp(log_t))),
        bounds=_LOG_T_BOUNDS,
        method="bounded",
        options={"xatol": 1e-4},
    )
    return float(np.exp(result.x))


class TemperatureScaledClassifier(ClassifierMixin, BaseEstimator):
    """A classifier whose `predict_proba` is its estimator's, scaled by a fixed temperature.

    `fit` fits a clone of `estimator` and keeps `temperature`: a pipeline whose last step is
    this wrapper can be refitted on more data with the temperature chosen on held-out
    predictions. Predictions (argmax) are the estimator's.
    """

    def __init__(self, estimator: Any = None, temperature: float = 1.0) -> None:
        self.estimator = estimator
        self.temperature = temperature

    def fit(self, X: Any, y: Any, **fit_params: Any) -> TemperatureScaledClassifier:
        """Fit a clone of `estimator` on (X, y)."""
        self.estimator_ = clone(self.estimator).fit(X, y, **fit_params)
        self.classes_ = self.estimator_.classes_
        return self

    def predict_proba(self, X: Any) -> np.ndarray:
        """The estimator's probabilities, temperature-scaled."""
        return scale_probabilities(self.estimator_.predict_proba(X), self.temperature)

    def predict(self, X: Any) -> np.ndarray:
        """The estimator's classes (scaling never changes the top class)."""
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


def with_temperature(pipeline: Pipeline, temperature: float) -> Pipeline:
    """`pipeline` (fitted) with its classifier's probabilities scaled by `temperature`.

    The fitted steps are shared, not copied or refitted; the last step becomes a fitted
    `TemperatureScaledClassifier`, which `models/inference.py`'s fast path calls like any
    classifier.
    """
    name, classifier = pipeline.steps[-1]
    scaled = TemperatureScaledClassifier(classifier, temperature)
    scaled.estimator_ = classifier
    scaled.classes_ = classifier.classes_
    return Pipeline([*pipeline.steps[:-1], (name, scaled)])


def class_index(classes: np.ndarray, labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each label's column in a probability matrix over `classes`, and which labels have one.

    A label the model never saw has no column: it is left out of a temperature fit.
    """
    column = {label: number for number, label in enumerate(classes)}
    known = np.array([label in column for label in labels], dtype=bool)
    index = np.array([column.get(label, -1) for label in labels], dtype=int)
    return index[known], known


@dataclass(frozen=True)
class ReliabilityTable:
    """The reliability bins of one split's predictions, before or after calibration."""

    split: str
    calibrated: bool
    bins: list[ReliabilityBin]

    @property
    def ece(self) -> float:
        """Expected calibration error of these bins."""
        return _weighted_gap(self.bins)

    @property
    def metric_name(self) -> str:
        """`test_ece`, `test_ece_uncalibrated`, `validation_ece`, ..."""
        return f"{self.split}_ece" + ("" if self.calibrated else "_uncalibrated")

    @classmethod
    def of(
        cls, split: str, calibrated: bool, probabilities: np.ndarray, correct: np.ndarray
    ) -> ReliabilityTable:
        """The table of a probability matrix and whether each row's top class was right."""
        return cls(split, calibrated, reliability_bins(top_confidence(probabilities), correct))


@dataclass(frozen=True)
class CalibrationReport:
    """The temperature a version applies and its reliability before and after it."""

    temperature: float
    # False when the candidate calibrates itself (CalibratedClassifierCV): no temperature applied.
    scaled: bool
    tables: list[ReliabilityTable]

    @classmethod
    def measure(
        cls,
        temperature: float,
        scaled: bool,
        splits: dict[str, tuple[np.ndarray, np.ndarray, np.ndarray]],
    ) -> CalibrationReport:
        """The report of `splits`: name → (probabilities before, after scaling, correct)."""
        tables = [
            ReliabilityTable.of(name, calibrated, probabilities, correct)
            for name, (raw, scaled_probabilities, correct) in splits.items()
            for calibrated, probabilities in ((False, raw), (True, scaled_probabilities))
        ]
        return cls(temperature, scaled, tables)

    def metrics(self) -> dict[str, float]:
        """One ECE metric per table."""
        return {table.metric_name: table.ece for table in self.tables}

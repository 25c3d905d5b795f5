"""Intent-classification metrics and reports in the spirit of `rasa test nlu`."""

from __future__ import annotations

from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd
from sklearn.metrics import accuracy_score, classification_report, confusion_matrix, f1_score

if TYPE_CHECKING:
    from models.calibration import CalibrationReport


@dataclass(frozen=True)
class Predictions:
    """Predicted intents with their confidences for a labelled set."""

    texts: list[str]
    true: np.ndarray
    predicted: np.ndarray
    confidence: np.ndarray

    @property
    def correct(self) -> np.ndarray:
        """Boolean per example."""
        return self.true == self.predicted


def predict_labelled(
    model: Any, frame: Any, labels: npt.ArrayLike
) -> tuple[Predictions, np.ndarray]:
    """Predictions and the probability matrix of `model` on a frame with a `text` column."""
    probabilities = model.predict_proba(frame)
    best = probabilities.argmax(axis=1)
    return (
        Predictions(
            texts=frame["text"].astype(str).tolist(),
            true=np.asarray(labels, dtype=object),
            predicted=np.asarray(model.classes_, dtype=object)[best],
            confidence=probabilities[np.arange(len(best)), best],
        ),
        probabilities,
    )


def summary_metrics(predictions: Predictions) -> dict[str, float]:
    """Accuracy, macro-F1 and weighted-F1."""
    true, predicted = predictions.true, predictions.predicted
    return {
        "accuracy": float(accuracy_score(true, predicted)),
        "macro_f1": float(f1_score(true, predicted, average="macro", zero_division=0)),
        "weighted_f1": float(f1_score(true, predicted, average="weighted", zero_division=0)),
    }


@dataclass(frozen=True)
class IntentScores:
    """Precision, recall, F1 and support of one intent, or an average over the intents."""

    precision: float
    recall: float
    f1: float
    support: int
    # The intents it was most often mistaken for, most frequent first (None for averages).
    confused_with: dict[str, int] | None = None

    @classmethod
    def from_sklearn(cls, entry: Mapping[str, float]) -> IntentScores:
        """One row of scikit-learn's `classification_report(..., output_dict=True)`."""
        return cls(
            float(entry["precision"]),
            float(entry["recall"]),
            float(entry["f1-score"]),
            int(entry["support"]),
        )

    def to_dict(self) -> dict[str, object]:
        """The row as intent_report.json holds it (scikit-learn's keys, support as a float)."""
        row: dict[str, object] = {
            "precision": self.precision,
            "recall": self.recall,
            "f1-score": self.f1,
            "support": float(self.support),
        }
        if self.confused_with is not None:
            row["confused_with"] = dict(self.confused_with)
        return row


@dataclass(frozen=True)
class IntentReport:
    """Per-intent scores on a labelled set, in the spirit of `rasa test nlu`'s intent report."""

    intents: dict[str, IntentScores]
    accuracy: float
    macro_avg: IntentScores
    weighted_avg: IntentScores

    def to_dict(self) -> dict[str, object]:
        """intent_report.json: scikit-learn's classification report plus `confused_with`."""
        return {
            **{intent: scores.to_dict() for intent, scores in self.intents.items()},
            "accuracy": self.accuracy,
            "macro avg": self.macro_avg.to_dict(),
            "weighted avg": self.weighted_avg.to_dict(),
        }


_AVERAGES = ("accuracy", "macro avg", "weighted avg")


def intent_report(predictions: Predictions, top_confusions: int = 3) -> IntentReport:
    """Per-intent precision/recall/F1/support and the intents each one is most confused with."""
    # Single-label classification: scikit-learn names its micro average "accuracy".
    raw = classification_report(
        predictions.true, predictions.predicted, output_dict=True, zero_division=0
    )
    confusions: dict[str, Counter[str]] = {}
    for true, predicted in zip(predictions.true, predictions.predicted, strict=True):
        if true != predicted:
            confusions.setdefault(true, Counter())[predicted] += 1
    intents = {
        intent: replace(
            IntentScores.from_sklearn(entry),
            confused_with=dict(confusions.get(intent, Counter()).most_common(top_confusions)),
        )
        for intent, entry in raw.items()
        if intent not in _AVERAGES
    }
    return IntentReport(
        intents,
        float(raw["accuracy"]),
        IntentScores.from_sklearn(raw["macro avg"]),
        IntentScores.from_sklearn(raw["weighted avg"]),
    )


@dataclass(frozen=True)
class IntentError:
    """A misclassified example."""

    text: str
    intent: str
    predicted: str
    confidence: float

    def to_dict(self) -> dict[str, object]:
        """As intent_errors.json holds it (`rasa test nlu`'s shape)."""
        return {
            "text": self.text,
            "intent": self.intent,
            "intent_prediction": {"name": self.predicted, "confidence": self.confidence},
        }


def intent_errors(predictions: Predictions) -> list[IntentError]:
    """Every misclassified example, most confident mistakes first."""
    wrong = np.flatnonzero(~predictions.correct)
    wrong = wrong[np.argsort(-predictions.confidence[wrong])]
    return [
        IntentError(
            text=predictions.texts[i],
            intent=predictions.true[i],
            predicted=predictions.predicted[i],
            confidence=round(float(predictions.confidence[i]), 4),
        )
        for i in wrong
    ]


def per_intent_table(report: IntentReport) -> pd.DataFrame:
    """One row per intent of an `intent_report`: precision, recall, F1 and support."""
    rows = [
        {
            "intent": intent,
            "precision": scores.precision,
            "recall": scores.recall,
            "f1": scores.f1,
            "support": scores.support,
        }
        for intent, scores in report.intents.items()
    ]
    return pd.DataFrame(rows, columns=["intent", "precision", "recall", "f1", "support"])


def plot_confusion_matrix(predictions: Predictions, labels: list[str], path: Path) -> Path:
    """Row-normalised confusion matrix as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    matrix = confusion_matrix(predictions.true, predictions.predicted, labels=labels).astype(float)
    matrix /= np.maximum(matrix.sum(axis=1, keepdims=True), 1)
    size = max(6.0, 0.18 * len(labels))
    figure, axes = plt.subplots(figsize=(size, size))
    axes.imshow(matrix, cmap="Blues", vmin=0, vmax=1)
    axes.set_xticks(range(len(labels)), labels, rotation=90, fontsize=6)
    axes.set_yticks(range(len(labels)), labels, fontsize=6)
    axes.set_xlabel("predicted intent")
    axes.set_ylabel("true intent")
    axes.set_title("Confusion matrix (row-normalised, test split)")
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def plot_confidence_histogram(predictions: Predictions, threshold: float, path: Path) -> Path:
    """Confidence of correct vs wrong predictions, with the fallback threshold marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(figsize=(7, 4))
    bins = np.linspace(0, 1, 26).tolist()
    axes.hist(predictions.confidence[predictions.correct], bins=bins, alpha=0.7, label="correct")
    axes.hist(predictions.confidence[~predictions.correct], bins=bins, alpha=0.7, label="wrong")
    axes.axvline(
        threshold, color="black", linestyle="--", label=f"fallback threshold {threshold:.2f}"
    )
    axes.set_xlabel("confidence")
    axes.set_ylabel("messages")
    axes.set_yscale("log")
    axes.legend()
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path


def plot_reliability_diagram(report: CalibrationReport, path: Path) -> Path:
    """Accuracy against confidence per bin, one panel per split, before and after calibration."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    splits = list(dict.fromkeys(table.split for table in report.tables))
    figure, panels = plt.subplots(1, len(splits), figsize=(5 * len(splits), 4.5), squeeze=False)
    for axes, split in zip(panels[0], splits, strict=True):
        axes.plot([0, 1], [0, 1], color="grey", linestyle=":", label="perfectly calibrated")
        for table in (t for t in report.tables if t.split == split):
            filled = [b for b in table.bins if b.count]
            stage = f"T={report.temperature:.2f}" if table.calibrated else "uncalibrated"
            axes.plot(
                [b.mean_confidence for b in filled],
                [b.accuracy for b in filled],
                marker="o",
                label=f"{stage}: ECE {table.ece:.3f}",
            )
        axes.set_xlabel("mean confidence in bin")
        axes.set_ylabel("accuracy in bin")
        axes.set_title(f"Reliability, {split} split")
        axes.legend(loc="upper left", fontsize=8)
    figure.tight_layout()
    figure.savefig(path, dpi=90)
    plt.close(figure)
    return path

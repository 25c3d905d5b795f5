"""Scores of a served model on a labelled test set, from the HTTP API's own answers (pure).

`make evaluate` (pipelines/evaluate.py) sends every test text to `/batch_predict` and times
single `/predict` calls; this module turns the gold labels and those answers into the figures a
user compares with other systems. An answer that falls back (`nlu_fallback`) is a miss for
top-intent accuracy and macro-F1, as a customer gets no intent from it; answered accuracy counts
only the answers that did not fall back. Top-k accuracy and calibration (ECE) read the model's
ranked candidates, which the API lists whether or not it fell back.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from sklearn.metrics import f1_score

from models.calibration import expected_calibration_error

ECE_BINS = 15


@dataclass(frozen=True)
class ServedAnswer:
    """What the API answered for one text: the intent given and the ranked candidates."""

    intent: str
    fallback: bool
    candidates: tuple[str, ...]  # best first, as `top_k` lists them
    confidence: float  # the best candidate's

    @classmethod
    def from_document(cls, document: Mapping[str, Any]) -> ServedAnswer:
        """One prediction document of `/predict` or of `/batch_predict`'s `predictions`."""
        return cls(
            intent=str(document["intent"]),
            fallback=bool(document["fallback"]),
            candidates=tuple(str(ranked["intent"]) for ranked in document["top_k"]),
            confidence=float(document["confidence"]),
        )


@dataclass(frozen=True)
class BenchmarkScores:
    """The quality figures of one evaluated version, each in [0, 1] (NaN: nothing to count)."""

    n_scored: int
    accuracy: float  # the answered intent is the gold one; a fallback is a miss
    macro_f1: float  # over the gold intents; a fallback is a miss of the gold intent
    fallback_rate: float
    answered_accuracy: float  # accuracy among the answers that did not fall back
    top1_accuracy: float  # the best candidate is the gold one, fallback or not
    top5_accuracy: float
    ece: float  # of the best candidate's confidence, ECE_BINS equal-width bins

    def to_metrics(self) -> dict[str, float]:
        """The figures as MLflow metrics (NaN left out: MLflow would store it as a number)."""
        values = {
            "n_scored": float(self.n_scored),
            "accuracy": self.accuracy,
            "macro_f1": self.macro_f1,
            "fallback_rate": self.fallback_rate,
            "answered_accuracy": self.answered_accuracy,
            "top1_accuracy": self.top1_accuracy,
            "top5_accuracy": self.top5_accuracy,
            "ece": self.ece,
        }
        return {name: value for name, value in values.items() if not math.isnan(value)}


@dataclass(frozen=True)
class Latency:
    """Client-side latency of single requests sent one at a time (concurrency 1)."""

    calls: int
    p50_ms: float
    p99_ms: float


@dataclass(frozen=True)
class Anchor:
    """A reference figure on Banking77's official test split, not measured by a benchmark run."""

    system: str  # as the table's row names it
    accuracy: float
    source: str


PUBLISHED = "published: Casanueva et al. 2020"
MEASURED = "measured on a 2-core machine like this one (../shared/notes/measured.md)"
ANCHORS = (
    Anchor("USE+ConveRT", 0.934, PUBLISHED),
    Anchor("fine-tuned BERT", 0.930, PUBLISHED),
    Anchor("w+c TF-IDF+LogReg", 0.917, MEASURED),
    Anchor("MiniLM⊕TF-IDF+SVC", 0.942, MEASURED),
)


def top_k_accuracy(gold: Sequence[str], answers: Sequence[ServedAnswer], k: int) -> float:
    """Share of texts whose gold intent is among the first `k` candidates (fallback or not)."""
    _same_length(gold, answers)
    if not gold:
        return math.nan
    hits = sum(label in answer.candidates[:k] for label, answer in zip(gold, answers, strict=True))
    return hits / len(gold)


def score_answers(gold: Sequence[str], answers: Sequence[ServedAnswer]) -> BenchmarkScores:
    """Every quality figure of the served answers against the gold intents."""
    _same_length(gold, answers)
    if not gold:
        raise ValueError("no answers to score")
    truth = np.asarray(gold, dtype=object)
    given = np.asarray([answer.intent for answer in answers], dtype=object)
    fell_back = np.asarray([answer.fallback for answer in answers], dtype=bool)
    right = (given == truth) & ~fell_back
    answered = int((~fell_back).sum())
    best_right = np.asarray(
        [
            bool(a.candidates) and a.candidates[0] == label
            for label, a in zip(gold, answers, strict=True)
        ],
        dtype=bool,
    )
    # Averaged over the gold intents only: `nlu_fallback` is no intent of the test set, so a
    # fallback lowers its gold intent's recall instead of adding a class of its own.
    labels = sorted(set(gold))
    macro_f1 = f1_score(truth, given, labels=labels, average="macro", zero_division=0)
    confidences = np.asarray([answer.confidence for answer in answers], dtype=float)
    return BenchmarkScores(
        n_scored=len(gold),
        accuracy=float(right.mean()),
        macro_f1=float(macro_f1),
        fallback_rate=float(fell_back.mean()),
        answered_accuracy=float(right.sum() / answered) if answered else math.nan,
        top1_accuracy=float(best_right.mean()),
        top5_accuracy=top_k_accuracy(gold, answers, 5),
        ece=float(expected_calibration_error(confidences, best_right, bins=ECE_BINS)),
    )


def latency(seconds: Sequence[float]) -> Latency:
    """p50 and p99 of request times given in seconds."""
    if not seconds:
        raise ValueError("no request was timed")
    p50, p99 = np.percentile(np.asarray(seconds, dtype=float) * 1000.0, [50, 99])
    return Latency(len(seconds), float(p50), float(p99))


def _same_length(gold: Sequence[str], answers: Sequence[ServedAnswer]) -> None:
    if len(gold) != len(answers):
        raise ValueError(f"{len(gold)} gold labels but {len(answers)} answers")


def _cell(value: float | None, digits: int = 4) -> str:
    if value is None or math.isnan(value):
        return "—"
    return f"{value:.{digits}f}"


COLUMNS = ("accuracy", "macro-F1", "fallback", "answered", "top-5", "ECE", "p50(ms)", "p99(ms)")
NAME_WIDTH = 26


def render_table(title: str, scores: BenchmarkScores, timing: Latency | None) -> str:
    """The benchmark table: this run's row beside the reference rows, marked as not measured."""
    header = f"{'system':<{NAME_WIDTH}}" + "".join(f"{column:>9}" for column in COLUMNS)
    measured = (
        scores.accuracy,
        scores.macro_f1,
        scores.fallback_rate,
        scores.answered_accuracy,
        scores.top5_accuracy,
        scores.ece,
    )
    times = (timing.p50_ms, timing.p99_ms) if timing else (None, None)
    row = f"{'this run':<{NAME_WIDTH}}" + "".join(f"{_cell(v):>9}" for v in measured)
    lines = [f"this run: {title}, {scores.n_scored} test texts scored", "", header]
    lines.append(row + "".join(f"{_cell(v, 1):>9}" for v in times))
    sources = list(dict.fromkeys(anchor.source for anchor in ANCHORS))
    for anchor in ANCHORS:
        name = f"[ref{sources.index(anchor.source) + 1}] {anchor.system}"
        lines.append(f"{name:<{NAME_WIDTH}}{anchor.accuracy:>9.3f}")
    lines += [
        "",
        "[ref] rows are NOT measured by this run: top-intent accuracy on Banking77's official test",
        "split, comparable only when the folder evaluated is Banking77.",
        *(f"  [ref{number}] {source}" for number, source in enumerate(sources, start=1)),
        "accuracy counts a fallback as a miss; answered: accuracy of the answers that did not fall"
        " back;",
        f"top-1 candidate accuracy, fallback ignored as the references score: "
        f"{_cell(scores.top1_accuracy)}",
    ]
    if timing:
        lines.append(f"latency: {timing.calls} single /predict calls, one at a time, client-side")
    return "\n".join(lines)

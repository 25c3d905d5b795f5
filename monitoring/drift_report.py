"""The Evidently part of a monitoring run: data and prediction drift per column, as HTML.

Evidently 0.7 API (`from evidently import Report, Dataset, DataDefinition`). Text drift is its
domain classifier (ROC AUC of telling current from reference texts); length, word count and
TextBlob polarity are descriptors of the text column (polarity through a custom descriptor,
because Evidently's own Sentiment descriptor needs NLTK data that cannot be downloaded here).
"""

from __future__ import annotations

import logging
import math
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, TextIO

import pandas as pd
from upath import UPath

from features.sentiment import sentiment
from features.text_stats import TEXT_STAT_NAMES, text_stats
from monitoring.metrics import distribution, js_noise_floor
from monitoring.report_html import safe_report_html

DRIFT_COLUMNS = (
    "text",
    "length",
    "word_count",
    "polarity",
    "predicted_intent",
    "confidence",
    "fallback",
)
FRAME_COLUMNS = ("text", "predicted_intent", "confidence", "fallback")
logger = logging.getLogger(__name__)


def _numeric_column(values: Any, index: pd.Index) -> Any:
    from evidently.core.datasets import DatasetColumn
    from evidently.legacy.core import ColumnType

    return DatasetColumn(type=ColumnType.Numerical, data=pd.Series(values, index=index))


def polarity_descriptor(column: Any) -> Any:
    """TextBlob polarity of each text (features.sentiment, as in training)."""
    texts = column.data.astype(str).tolist()
    return _numeric_column(sentiment(texts)[:, 0], column.data.index)


def word_count_descriptor(column: Any) -> Any:
    """Words per text (features.text_stats, as in training)."""
    stats = text_stats(column.data.astype(str).tolist())
    return _numeric_column(stats[:, TEXT_STAT_NAMES.index("word_count")], column.data.index)


def categorical_threshold(
    column: str, reference: pd.DataFrame, current: pd.DataFrame, configured: float
) -> float:
    """A categorical column's Jensen-Shannon threshold: configured, or the chance floor."""
    values = reference[column].astype(str)
    shares = distribution(values, sorted(set(values)))
    return max(configured, js_noise_floor(shares, len(reference), len(current)))


def noise_floor(reference_rows: int, current_rows: int) -> float:
    """The normed Wasserstein distance two same-distribution samples of these sizes reach.

    About 0.8·√(1/n+1/m) on average; twice that keeps false alarms rare on small windows
    (a few hundred messages) and is below Evidently's 0.1 from ~1,000 messages on.
    """
    return 2.0 * math.sqrt(1 / max(reference_rows, 1) + 1 / max(current_rows, 1))


@dataclass
class ColumnDrift:
    """One column's drift test."""

    column: str
    method: str
    score: float
    threshold: float
    drifted: bool


@dataclass
class DriftReport:
    """The drift of every column, the descriptor means, and where the HTML went."""

    columns: list[ColumnDrift]
    descriptor_means: dict[str, dict[str, float]]
    html_path: UPath

    @property
    def drifted(self) -> list[str]:
        """Names of the columns whose distribution changed."""
        return [column.column for column in self.columns if column.drifted]


def _dataset(frame: pd.DataFrame) -> Any:
    from evidently import DataDefinition, Dataset
    from evidently.descriptors import CustomColumnDescriptor, TextLength

    definition = DataDefinition(
        text_columns=["text"],
        numerical_columns=["confidence"],
        categorical_columns=["predicted_intent", "fallback"],
    )
    descriptors = [
        TextLength("text", alias="length"),
        CustomColumnDescriptor("text", word_count_descriptor, alias="word_count"),
        CustomColumnDescriptor("text", polarity_descriptor, alias="polarity"),
    ]
    prepared = frame[list(FRAME_COLUMNS)].reset_index(drop=True).copy()
    prepared["fallback"] = prepared["fallback"].map({True: "yes", False: "no"})
    return Dataset.from_pandas(prepared, data_definition=definition, descriptors=descriptors)


def run_drift_report(
    reference: pd.DataFrame,
    current: pd.DataFrame,
    text_threshold: float,
    html_path: UPath,
    distance_threshold: float = 0.1,
) -> DriftReport:
    """Compare current with reference (both: text, predicted_intent, confidence, fallback)."""
    from evidently import Report

    reference_data, current_data = _dataset(reference), _dataset(current)
    preset = _drift_preset(reference, current, text_threshold, distance_threshold)
    report = Report([preset], include_tests=True)
    with counted_convergence_warnings() as unconverged:
        snapshot = report.run(current_data, reference_data)
    if unconverged:
        # Evidently's text drift is a domain classifier, SGDClassifier(max_iter=50), fixed inside
        # Evidently (evidently/legacy/utils/data_drift_utils.py) with no option to change it; on
        # windows of several hundred messages it stops at that cap. We use its ROC AUC as
        # Evidently computes it, so a warning per fit on every report says nothing to act on.
        logger.info(
            "text drift: Evidently's domain classifier stopped at its 50-epoch cap (%d fits)",
            len(unconverged),
        )
    html_path.parent.mkdir(parents=True, exist_ok=True)
    # Written by us, not `save_html`, which opens only local file names (REPORTS_DIR may be s3://).
    # Escaped: the page embeds customer text in a <script> element (monitoring/report_html.py).
    html_path.write_text(safe_report_html(snapshot.get_html_str(as_iframe=False)), encoding="utf-8")
    # Every run's snapshot is kept: monitoring/trends.py adds it to the Evidently workspace.
    (html_path.parent / "snapshot.json").write_text(snapshot.dumps(), encoding="utf-8")
    means = {
        name: _descriptor_means(data)
        for name, data in (("reference", reference_data), ("current", current_data))
    }
    return DriftReport(_column_drifts(snapshot.dict()), means, html_path)


def _drift_preset(
    reference: pd.DataFrame, current: pd.DataFrame, text_threshold: float, distance_threshold: float
) -> Any:
    """The per-column drift tests of DRIFT_COLUMNS, with thresholds that allow for chance."""
    from monitoring.evidently_preset import ColumnDriftPreset

    # Distances, not p-values: a test's p-value flags trivial differences once windows hold
    # thousands of messages and flips on noise when they hold a few hundred. Evidently's
    # default switches between the two by sample size; these stay put. No "share of drifted
    # columns" rule of Evidently's own: the page's verdict is the one rule (evidently_preset.py).
    return ColumnDriftPreset(
        columns=list(DRIFT_COLUMNS),
        num_method="wasserstein",
        cat_method="jensenshannon",
        text_method="abs_text_content_drift",
        text_threshold=text_threshold,
        num_threshold=max(distance_threshold, noise_floor(len(reference), len(current))),
        cat_threshold=distance_threshold,
        # Categories get the same floor as the page's intent rule: what chance moves them by.
        per_column_threshold={
            column: categorical_threshold(column, reference, current, distance_threshold)
            for column in ("predicted_intent", "fallback")
        },
    )


def _column_drifts(document: dict[str, Any]) -> list[ColumnDrift]:
    """Each column's drift score, threshold and test outcome, from a snapshot's `dict()`."""
    failed = {
        test["metric_config"]["params"].get("column")
        for test in document["tests"]
        if test["id"] == "drift" and str(test["status"]).endswith("FAIL")
    }
    columns = []
    for metric in document["metrics"]:
        config = metric["config"]
        if not config["type"].endswith("ValueDrift"):
            continue
        columns.append(
            ColumnDrift(
                column=config["column"],
                method=str(config.get("method")),
                score=round(float(metric["value"]), 4),
                threshold=float(config.get("threshold") or 0),
                drifted=config["column"] in failed,
            )
        )
    return columns


def _descriptor_means(data: Any) -> dict[str, float]:
    """The mean text length, word count and polarity of an Evidently dataset."""
    frame = data.as_dataframe()
    return {
        column: round(float(frame[column].mean()), 4)
        for column in ("length", "word_count", "polarity")
    }


@contextmanager
def counted_convergence_warnings() -> Iterator[list[str]]:
    """Collect scikit-learn ConvergenceWarnings raised in the block instead of showing them.

    Only ConvergenceWarning is taken; every other warning goes on to the previous handler as
    before. For library fits we cannot configure; the caller logs one line about them.
    """
    from sklearn.exceptions import ConvergenceWarning

    collected: list[str] = []
    with warnings.catch_warnings():
        warnings.simplefilter("always", ConvergenceWarning)  # count every fit, not the first
        previous = warnings.showwarning

        def show(
            message: Warning | str,
            category: type[Warning],
            filename: str,
            lineno: int,
            file: TextIO | None = None,
            line: str | None = None,
        ) -> None:
            if issubclass(category, ConvergenceWarning):
                collected.append(str(message))
            else:
                previous(message, category, filename, lineno, file, line)

        warnings.showwarning = show
        yield collected

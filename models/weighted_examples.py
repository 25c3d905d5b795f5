"""Fitting a candidate on its distinct examples, each weighted by how often it occurs.

Logged conversations repeat the same customer messages many times (at 1M messages the 348,667
training examples hold ~9,122 distinct texts, bench/README.md). Every row a model reads
identically (same values in the columns it reads, same intent) contributes the same term to a
linear model's loss, so fitting one row per distinct example with its count as `sample_weight`
minimises the same loss as fitting every copy, at a fraction of the memory and time: the refit's
TF-IDF on ~400k texts was the 1M run's peak (issue 10). What changes: the feature extractors
fitted before the estimator (TF-IDF's document frequencies and `min_df`, a scaler's mean) count
each distinct example once, not each copy.

A label left with fewer than `MIN_DISTINCT_PER_LABEL` distinct rows keeps all its copies
(weight 1 each): a cross-validated calibrator (CalibratedClassifierCV, cv=3) needs that many
rows of every class. An estimator that takes no `sample_weight` is fitted on every row as given.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from sklearn.pipeline import Pipeline
from sklearn.utils.validation import has_fit_parameter

logger = logging.getLogger(__name__)

MIN_DISTINCT_PER_LABEL = 3  # the calibrated candidates' cross-validation folds (cv=3)


@dataclass(frozen=True)
class WeightedExamples:
    """The rows a model is fitted on, their labels, and each row's weight (its count)."""

    inputs: pd.DataFrame
    labels: np.ndarray
    weights: np.ndarray | None  # None: every row as given, no weights passed
    examples: int  # how many examples the rows stand for (the weights' sum)

    @property
    def rows(self) -> int:
        """How many rows the model is fitted on."""
        return len(self.inputs)


def distinct_examples(
    inputs: pd.DataFrame,
    labels: np.ndarray,
    columns: Sequence[str],
    min_distinct: int = MIN_DISTINCT_PER_LABEL,
) -> WeightedExamples:
    """One row per distinct (`columns`, label), weighted by its count, in first-seen order.

    `columns` are the input columns the model reads: rows differing only in a column it does
    not read are the same example to it (the first one's other values are kept). Labels with
    fewer than `min_distinct` distinct rows keep every row, each with weight 1.
    """
    frame = inputs.reset_index(drop=True)
    labels = np.asarray(labels)
    keys = pd.DataFrame({f"c{i}": frame[c] for i, c in enumerate(columns)})
    keys["label"] = labels
    group = keys.groupby(list(keys.columns), sort=False, dropna=False).ngroup().to_numpy()
    counts = np.bincount(group)
    _, first = np.unique(group, return_index=True)  # first row of each group
    distinct_per_label = pd.Series(labels[first]).value_counts()
    thin = set(distinct_per_label[distinct_per_label < min_distinct].index)
    keep_all = pd.Series(labels).isin(thin).to_numpy() if thin else np.zeros(len(labels), bool)
    merged = first[~keep_all[first]]
    rows = np.sort(np.concatenate([merged, np.flatnonzero(keep_all)]))
    weights = np.where(keep_all[rows], 1, counts[group[rows]]).astype(np.float64)
    return WeightedExamples(
        frame.iloc[rows].reset_index(drop=True), labels[rows], weights, len(labels)
    )


def accepts_sample_weight(pipeline: Any) -> bool:
    """Whether `pipeline`'s final estimator takes `sample_weight` in its `fit`."""
    final = pipeline.steps[-1][1] if isinstance(pipeline, Pipeline) else pipeline
    return has_fit_parameter(final, "sample_weight")


def fit_distinct(
    pipeline: Any, inputs: pd.DataFrame, labels: np.ndarray, columns: Sequence[str]
) -> tuple[Any, WeightedExamples]:
    """Fit `pipeline` on the distinct examples of (`inputs`, `labels`) with their counts as
    weights (routed to its final step), or on every row when that step takes no weights."""
    if accepts_sample_weight(pipeline):
        examples = distinct_examples(inputs, labels, columns)
    else:
        examples = WeightedExamples(inputs, np.asarray(labels), None, len(inputs))
    logger.info(
        "fitting on %d rows for %d examples (distinct by %s and label)",
        examples.rows,
        examples.examples,
        "+".join(columns),
    )
    return fit_weighted(pipeline, examples), examples


def fit_weighted(pipeline: Any, examples: WeightedExamples) -> Any:
    """Fit `pipeline` on `examples`, their weights as the final step's `sample_weight`."""
    if examples.weights is None:
        return pipeline.fit(examples.inputs, examples.labels)
    if isinstance(pipeline, Pipeline):
        params = {f"{pipeline.steps[-1][0]}__sample_weight": examples.weights}
    else:
        params = {"sample_weight": examples.weights}
    return pipeline.fit(examples.inputs, examples.labels, **params)

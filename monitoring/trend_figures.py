"""The verdict's own figures as Evidently metric results, so the workspace can trend them.

The run's Evidently snapshot holds per-column drift scores; the verdict also rests on figures
computed over every message of the window (monitoring/metrics.py): the fallback rate, the
intent mix's Jensen-Shannon distance, the mean confidence, the message count and how many
columns drifted. Each one is a `MeanValue` of a one-row Evidently dataset (the mean of one row
is the figure itself), merged into the run's snapshot before it is added to the workspace, so
the project's dashboard plots them run after run beside the drift scores.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import pandas as pd
from evidently import DataDefinition, Dataset, Report
from evidently.metrics import MeanValue

if TYPE_CHECKING:
    from monitoring.summary import MonitoringSummary


@dataclass(frozen=True)
class TrendFigure:
    """A figure of the verdict: its column in the one-row dataset and its legend."""

    column: str
    legend: str


RATES = (
    TrendFigure("fallback_rate", "fallback rate"),
    TrendFigure("intent_mix_distance", "intent mix (Jensen-Shannon distance)"),
    TrendFigure("mean_confidence", "mean confidence"),
)
COUNTS = (
    TrendFigure("messages", "customer messages"),
    TrendFigure("drifted_columns", "drifted columns"),
)


def figures_of(summary: MonitoringSummary) -> dict[str, float]:
    """The run's figures by column; a figure the window has none of (no messages) is left out."""
    predictions = summary.predictions
    values: dict[str, float | None] = {
        "fallback_rate": predictions.fallback_rate.current,
        "intent_mix_distance": predictions.intent_js_distance,
        "mean_confidence": predictions.mean_confidence.current,
        "messages": float(summary.current_messages),
        "drifted_columns": float(len(summary.drifted_columns)),
    }
    return {
        name: float(value)
        for name, value in values.items()
        if value is not None and math.isfinite(value)
    }


def add_figures(document: dict[str, Any], summary: MonitoringSummary) -> None:
    """Merge the run's figures, as `MeanValue` results, into its snapshot `document`."""
    figures = figures_of(summary)
    frame = pd.DataFrame([figures])
    dataset = Dataset.from_pandas(
        frame, data_definition=DataDefinition(numerical_columns=list(figures))
    )
    snapshot = Report([MeanValue(column=name) for name in figures]).run(dataset, None)
    extra = json.loads(snapshot.dumps())  # Evidently's own serialisation, as snapshot.json
    document["metric_results"] = {**document["metric_results"], **extra["metric_results"]}
    document["top_level_metrics"] = [*document["top_level_metrics"], *extra["top_level_metrics"]]
    document["widgets"] = [*document["widgets"], *extra["widgets"]]

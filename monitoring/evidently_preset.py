"""Evidently's data drift preset without its own dataset-level verdict (Evidently 0.7).

`DataDriftPreset` adds `DriftedColumnsCount` with a test "share of drifted columns < 0.5" and
renders "Dataset Drift is (NOT) detected" from it. The report page judges with its own rules
(monitoring/verdict.py: any drifted column, the intent mix, the fallback rate, the confidence),
so the embedded report showing a second rule could contradict the page's verdict. This preset
keeps the per-column tests and the per-column table, with the same methods and thresholds, and
drops the share rule. Imported only when a report runs: Evidently is slow to import.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from evidently.legacy.metrics import DataDriftTable
from evidently.presets import DataDriftPreset
from evidently.presets.drift import _default_input_data_generator


class ColumnDriftPreset(DataDriftPreset):
    """Per-column drift tests and table only: no "share of drifted columns" verdict."""

    def generate_metrics(self, context: Any) -> Sequence[Any]:
        """The preset's `ValueDrift` per column, without its `DriftedColumnsCount`."""
        metrics = super().generate_metrics(context)
        return [metric for metric in metrics if type(metric).__name__ != "DriftedColumnsCount"]

    def render(self, context: Any, child_widgets: Any = None) -> list[Any]:
        """The per-column table (as the preset draws it), without the dataset drift widget."""
        table = DataDriftTable(
            columns=self.columns,
            stattest=self.method,
            cat_stattest=self.cat_method,
            num_stattest=self.num_method,
            text_stattest=self.text_method,
            per_column_stattest=self.per_column_method,
            stattest_threshold=self.threshold,
            cat_stattest_threshold=self.cat_threshold,
            num_stattest_threshold=self.num_threshold,
            text_stattest_threshold=self.text_threshold,
            per_column_stattest_threshold=self.per_column_threshold,
        )
        return list(context.get_legacy_metric(table, _default_input_data_generator, None)[1])

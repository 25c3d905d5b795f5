"""Trends across runs: every run's Evidently snapshot in an Evidently workspace (Evidently 0.7).

Each monitoring run keeps its snapshot (`snapshot.json` beside the report) and adds it to the
project `intent-monitoring` of a local Evidently workspace, tagged with its verdict and dated by
the end of its window, with the verdict's own figures merged in (monitoring/trend_figures.py).
The project's dashboard plots them run after run: fallback rate, intent-mix distance and mean
confidence, message count and drifted columns, and each column's drift score. `make monitor-ui`
(`evidently ui --workspace …`) serves it. Imported only when a run records: Evidently is slow
to import.
"""

from __future__ import annotations

import json
import logging
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING

from evidently.core.report import Snapshot
from evidently.sdk.models import DashboardPanelPlot, PanelMetric
from evidently.sdk.panels import line_plot_panel, text_panel
from evidently.ui.workspace import Project, Workspace

from models.location import is_local
from monitoring.drift_report import DRIFT_COLUMNS
from monitoring.trend_figures import COUNTS, RATES, TrendFigure, add_figures

if TYPE_CHECKING:
    from upath import UPath

    from monitoring.settings import MonitoringSettings
    from monitoring.summary import MonitoringSummary

logger = logging.getLogger(__name__)
PROJECT = "intent-monitoring"
SNAPSHOT = "snapshot.json"
DESCRIPTION = "The intent model's traffic, run by run: the verdict's figures and drift"


def _figures(figures: tuple[TrendFigure, ...]) -> list[PanelMetric]:
    return [
        PanelMetric(metric="MeanValue", metric_labels={"column": f.column}, legend=f.legend)
        for f in figures
    ]


def panels() -> list[DashboardPanelPlot]:
    """The dashboard: the verdict's figures first, then each column's drift score."""
    return [
        text_panel(
            "One verdict per run",
            "Each run's verdict and its reasons in words are on its report page (reports/<run>/"
            "index.html); runs here are tagged with that verdict.",
        ),
        line_plot_panel("Fallback rate, intent-mix distance, mean confidence", _figures(RATES)),
        line_plot_panel("Customer messages and drifted columns", _figures(COUNTS)),
        line_plot_panel(
            "Drift score per column (text: ROC AUC; others: distance)",
            [
                PanelMetric(metric="ValueDrift", metric_labels={"column": column}, legend=column)
                for column in DRIFT_COLUMNS
            ],
        ),
    ]


def _project(workspace: Workspace) -> Project:
    """The monitoring project, created on first use; panels it lacks are added (an older
    workspace gains the verdict's figures)."""
    found = workspace.search_project(PROJECT)
    project = found[0] if found else workspace.create_project(PROJECT, DESCRIPTION)
    titles = {panel.title for panel in project.dashboard.model().panels}
    for panel in panels():
        if panel.title not in titles:
            project.dashboard.add_panel(panel, tab="Drift")
    return project


def workspace_dir(settings: MonitoringSettings) -> Path | None:
    """MONITORING_EVIDENTLY_WORKSPACE, else `evidently_workspace/` in a local REPORTS_DIR."""
    if settings.evidently_workspace is not None:
        return settings.evidently_workspace
    if is_local(settings.reports_dir):
        return Path(settings.reports_dir.path) / "evidently_workspace"
    return None  # Evidently's local workspace needs a local folder


def record_run(workspace_dir: Path, summary: MonitoringSummary, run_dir: UPath) -> str | None:
    """Add the run's snapshot to the workspace; its snapshot id, or None without a snapshot.

    A window too small for the Evidently part has no snapshot: nothing to plot.
    """
    source = run_dir / SNAPSHOT
    if not source.exists():
        return None
    document = json.loads(source.read_text(encoding="utf-8"))
    # Dated by the window, not the moment it ran: a replayed day sits where it belongs.
    document["timestamp"] = summary.window.end.astimezone(UTC).replace(tzinfo=None).isoformat()
    document["tags"] = [summary.verdict.value]
    add_figures(document, summary)
    document["metadata"] = {
        "verdict": summary.verdict.value,
        "model_version": summary.model_version,
        "run": summary.run_id,
    }
    workspace_dir.mkdir(parents=True, exist_ok=True)
    workspace = Workspace(str(workspace_dir))
    project = _project(workspace)
    reference = workspace.add_run(project.id, Snapshot.load_dict(document), name=summary.run_id)
    logger.info("run %s added to Evidently project %s", summary.run_id, project.id)
    return str(reference.id)

"""Monitoring writes and reads its reports at a URL (REPORTS_DIR), not only in a local folder.

Real runs (registry, SQLite store, Evidently, MLflow) with the reports and the lake under
`memory://`, fsspec's in-process object store: what a run writes lands in the store, the second
run reads the first one's KPIs and lists both in the index from there, MLflow gets the report
files, and nothing is written to the working directory (where a URL taken for a relative path
would have gone). The same code reaches `s3://` in tests/pipelines/test_object_store.py.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from mlflow import MlflowClient
from upath import UPath

from monitoring.job import run_monitoring
from monitoring.settings import MonitoringSettings
from tests.monitoring.conftest import NOW, replay

pytestmark = pytest.mark.slow


def test_reports_at_a_url_hold_every_run_and_its_previous_kpis(
    champion, known_split, tmp_path: Path, monkeypatch
):
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    replay(store_url, champion["model"], known_split["held_out"]["text"].tolist()[:120], NOW)
    workdir = tmp_path / "cwd"
    workdir.mkdir()
    monkeypatch.chdir(workdir)
    base = f"memory://monitoring-{uuid.uuid4().hex[:8]}"
    settings = MonitoringSettings(
        store_url=store_url,
        mlflow_tracking_uri=champion["config"].tracking_uri,
        reports_dir=f"{base}/reports",
        lake_dir=f"{base}/lake",
        window_end=NOW,
    )
    assert str(settings.reports_dir) == f"{base}/reports"

    first = run_monitoring(settings, now=NOW)
    second = run_monitoring(settings, now=NOW)

    reports = UPath(f"{base}/reports")
    runs = sorted(path.name for path in reports.iterdir() if path.is_dir())
    assert runs == sorted([first.run_dir.name, second.run_dir.name])
    assert str(second.run_dir) == f"{base}/reports/{second.run_dir.name}"
    for result in (first, second):
        files = {path.name for path in result.run_dir.iterdir()}
        assert files == {
            "evidently.html",
            "index.html",
            "summary.json",
            "new_intents.json",
            "reliability_diagram.png",  # the champion's, logged at training
            "snapshot.json",  # the run's Evidently snapshot, kept
        }
        assert json.loads(result.summary_path.read_text())["mlflow_run_id"]
    assert (first.report_path.stat().st_size or 0) > 100_000  # Evidently's page, not a stub
    index = (reports / "index.html").read_text()
    assert first.run_dir.name in index and second.run_dir.name in index
    # The second run compares with the first one's KPIs, read back from the store.
    first_page = (first.run_dir / "index.html").read_text()
    second_page = (second.run_dir / "index.html").read_text()
    assert "previous report: —" in first_page
    assert second_page.count("previous report: —") < first_page.count("previous report: —")

    tracking = champion["config"].tracking_uri
    client = MlflowClient(tracking, tracking)
    run_id = json.loads(second.summary_path.read_text())["mlflow_run_id"]
    logged = {artifact.path for artifact in client.list_artifacts(run_id, "report")}
    assert logged == {
        "report/evidently.html",
        "report/index.html",
        "report/summary.json",
        "report/new_intents.json",
        "report/reliability_diagram.png",
        "report/snapshot.json",
    }
    assert list(workdir.iterdir()) == []

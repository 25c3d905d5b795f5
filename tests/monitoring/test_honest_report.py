"""A report that never misleads: a quiet window is its own verdict, in Dagster and on the page."""

from __future__ import annotations

import logging
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import numpy as np
import pytest

from monitoring.settings import MonitoringSettings
from pipelines.automation import drift_retraining_sensor
from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings
from tests.monitoring.conftest import replay

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def quiet(champion, known_split, tmp_path_factory):
    """A real monitoring_job run over a window of 4 messages, all handed to a human."""
    root = tmp_path_factory.mktemp("quiet-day")
    now = datetime.now(UTC) + timedelta(hours=1)
    store_url = f"sqlite:///{root / 'store.db'}"
    texts = known_split["held_out"]["text"].head(4).tolist()
    replay(store_url, champion["model"], texts, now, hours=0.9, handed_off=[True] * 4)
    settings = PipelineSettings(
        banking77_dir=None,
        conversation_jsonl_dir=root / "incoming",
        conversation_store_url=store_url,
        lake_dir=root / "lake",
        mlflow_tracking_uri=champion["config"].tracking_uri,
        retrain_min_new_labels=0,
    )
    defs = build_definitions(settings, MonitoringSettings(reports_dir=root / "reports"))
    (root / "home").mkdir()
    with dg.instance_for_test(temp_dir=str(root / "home")) as instance:
        job = defs.resolve_job_def("monitoring_job")
        config = {"ops": {"drift_report": {"config": {"window_end": now.isoformat()}}}}
        result = job.execute_in_process(instance=instance, run_config=config)
        yield {"defs": defs, "instance": instance, "result": result}


def _materialization(quiet) -> dg.AssetMaterialization:
    (event,) = quiet["result"].get_asset_materialization_events()
    return event.materialization


def test_a_quiet_window_is_insufficient_data_never_all_clear(quiet):
    metadata = _materialization(quiet).metadata
    assert metadata["verdict"].value == "insufficient_data"
    assert metadata["current_messages"].value == 4
    assert "only 4 customer messages" in metadata["reasons"].value
    calibration = metadata["calibration"].value  # too few labels, said, beside training time
    assert calibration["judged"] is False and calibration["training_ece"] is not None
    page = Path(metadata["report"].value).read_text(encoding="utf-8")
    assert "Too little traffic to judge — verdict: insufficient_data" in page
    assert "All clear" not in page and "#11693a;background" not in page
    assert "only 4 customer messages" in page


def test_a_quiet_window_never_starts_a_retraining(quiet):
    defs = quiet["defs"]
    resources = {
        name: defs.resources[name] for name in ("sources", "mlflow_registry", "monitoring")
    }
    with dg.build_sensor_context(
        instance=quiet["instance"], resources=resources, definitions=defs
    ) as context:
        tick = drift_retraining_sensor.evaluate_tick(context)
    assert not tick.run_requests
    assert "too little traffic to judge" in (tick.skip_message or "")


def test_the_alert_says_it_was_not_judged(champion, known_split, tmp_path, caplog):
    from monitoring.job import run_monitoring
    from tests.monitoring.conftest import NOW, settings_for

    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    replay(store_url, champion["model"], known_split["held_out"]["text"].head(3).tolist(), NOW)
    settings = settings_for(champion, store_url, tmp_path / "reports", window_end=NOW)
    with caplog.at_level(logging.WARNING, logger="monitoring.alerts"):
        result = run_monitoring(settings, now=NOW, log_to_mlflow=False)
    assert result.verdict == "insufficient_data"
    (alert,) = [r.getMessage() for r in caplog.records if r.getMessage().startswith("ALERT")]
    assert alert.startswith("ALERT insufficient_data: Intent model not judged")
    assert "only 3 customer messages" in alert


@pytest.fixture(scope="module")
def judged(champion, known_split, tmp_path_factory):
    """A real monitoring run (Evidently included) over 120 messages of known intents."""
    from monitoring.job import run_monitoring
    from tests.monitoring.conftest import NOW, settings_for

    root = tmp_path_factory.mktemp("judged-day")
    store_url = f"sqlite:///{root / 'store.db'}"
    texts = known_split["held_out"].sample(120, random_state=5)["text"].tolist()
    replay(store_url, champion["model"], texts, NOW)
    settings = settings_for(champion, store_url, root / "reports", window_end=NOW)
    return run_monitoring(settings, now=NOW, log_to_mlflow=False)


def test_the_page_states_one_drift_rule_and_evidently_adds_none(judged):
    evidently = judged.report_path.read_text(encoding="utf-8")
    # Evidently's own "share of drifted columns" rule is gone; its per-column tests stay.
    assert "Dataset Drift is" not in evidently and "Share of Drifted Columns" not in evidently
    assert "Drift is detected for" in evidently
    page = (judged.run_dir / "index.html").read_text(encoding="utf-8")
    assert "How the verdict is decided" in page and "One rule for the whole page" in page
    for column in judged.summary.columns:
        assert f"{column.column}: " in page and f"{column.threshold:.3g}" in page


def test_too_few_labels_for_calibration_is_said(judged):
    calibration = judged.summary.calibration
    assert calibration is not None and not calibration.judged and calibration.labels == 0
    page = (judged.run_dir / "index.html").read_text(encoding="utf-8")
    assert "Too few labels to measure: 0 labelled messages" in page


def test_calibration_on_labelled_traffic_beside_training_time(champion, known_split, tmp_path):
    from mlflow import MlflowClient

    from models.calibration import expected_calibration_error
    from monitoring.job import run_monitoring
    from tests.monitoring.conftest import NOW, predict, settings_for

    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    rows = known_split["held_out"].sample(60, random_state=6)
    texts, truth = rows["text"].tolist(), rows["category"].tolist()
    replay(store_url, champion["model"], texts, NOW, true_intents=truth)
    settings = settings_for(champion, store_url, tmp_path / "reports", window_end=NOW)
    result = run_monitoring(settings, now=NOW)

    served = predict(champion["model"], texts)
    expected = expected_calibration_error(
        np.array([p["confidence"] for p in served]),
        np.array([p["intent"] == t for p, t in zip(served, truth, strict=True)]),
    )
    calibration = result.summary.calibration
    assert calibration is not None and calibration.judged and calibration.labels == 60
    assert calibration.ece == pytest.approx(expected, abs=1e-4)
    registry = champion["registry"]
    version = registry.version_by_alias("champion")
    training_ece = registry.describe(version).metrics["test_ece"]
    assert calibration.training_ece == training_ece
    page = (result.run_dir / "index.html").read_text(encoding="utf-8")
    assert f"expected calibration error {calibration.ece:.3f}" in page
    assert f"on its held-out test data, it was {training_ece:.3f}" in page
    assert "<img src='reliability_diagram.png'" in page
    assert (result.run_dir / "reliability_diagram.png").stat().st_size > 1_000
    tracking = champion["config"].tracking_uri
    run = MlflowClient(tracking, tracking).get_run(result.mlflow_run_id)
    assert run.data.metrics["label_ece"] == pytest.approx(calibration.ece)


def test_every_run_keeps_its_snapshot_in_the_evidently_workspace(champion, known_split, tmp_path):
    from evidently.ui.workspace import Workspace

    from monitoring.job import run_monitoring
    from monitoring.trends import panels
    from tests.monitoring.conftest import NOW, settings_for

    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    texts = known_split["held_out"].sample(80, random_state=8)["text"].tolist()
    replay(store_url, champion["model"], texts, NOW)
    replay(store_url, champion["model"], texts[:40], NOW - timedelta(days=1))
    reports = tmp_path / "reports"
    runs = [
        run_monitoring(settings_for(champion, store_url, reports, window_end=end), now=end)
        for end in (NOW - timedelta(days=1), NOW)
    ]
    quiet_end = NOW - timedelta(days=5)  # no messages: no Evidently part, nothing to plot
    run_monitoring(settings_for(champion, store_url, reports, window_end=quiet_end), now=quiet_end)

    assert all((run.run_dir / "snapshot.json").stat().st_size > 1_000 for run in runs)
    workspace = Workspace(str(reports / "evidently_workspace"))
    (project,) = workspace.search_project("intent-monitoring")
    snapshots = [workspace.get_run(project.id, run) for run in workspace.list_runs(project.id)]
    assert sorted(s.metadata["run"] for s in snapshots) == sorted(r.run_dir.name for r in runs)
    ordered = sorted(snapshots, key=lambda s: s.metadata["run"])
    assert {s.metadata["verdict"] for s in snapshots} == {r.verdict.value for r in runs}
    titles = [panel.title for panel in workspace.get_dashboard(project.id).panels]
    assert titles == [panel.title for panel in panels()]
    # The verdict's figures are in each run's snapshot, as the dashboard's panels ask for them.
    for run, snapshot in zip(sorted(runs, key=lambda r: r.run_dir.name), ordered, strict=True):
        values = {
            result.metric_value_location.metric.params["column"]: result.value
            for result in snapshot.metric_results.values()
            if result.metric_value_location.metric.params["type"].endswith(":MeanValue")
        }
        predictions = run.summary.predictions
        assert values == pytest.approx(
            {
                "fallback_rate": predictions.fallback_rate.current,
                "intent_mix_distance": predictions.intent_js_distance,
                "mean_confidence": predictions.mean_confidence.current,
                "messages": run.summary.current_messages,
                "drifted_columns": len(run.summary.drifted_columns),
            }
        )
    plotted = {
        (metric.metric.rsplit(":", 1)[-1], metric.metric_labels.get("column"))
        for panel in workspace.get_dashboard(project.id).panels
        for metric in panel.values
    }
    assert {("MeanValue", name) for name in values} <= plotted
    assert "make monitor-ui" in runs[-1].index_path.read_text(encoding="utf-8")


def test_a_calm_small_window_is_not_drift_by_chance(judged):
    # 120 messages of the champion's own intents: the mix moves by chance alone, and the
    # threshold rises to what chance reaches for a window this size.
    predictions = judged.summary.predictions
    assert predictions.intent_js_floor > 0.1
    assert not any("customers ask about" in reason for reason in judged.summary.reasons)
    (intent,) = [c for c in judged.summary.columns if c.column == "predicted_intent"]
    assert intent.threshold == pytest.approx(max(0.1, predictions.intent_js_floor), abs=0.05)
    assert not intent.drifted

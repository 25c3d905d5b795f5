"""The APScheduler runner fires a job and shuts down cleanly (in-process and on SIGTERM), and
its jobs are Dagster runs recorded in the instance."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import pytest

from models.registry import IntentRegistry, RegistryConfig
from monitoring.settings import MonitoringSettings
from pipelines.automation import drift_retraining_sensor
from pipelines.definitions import build_definitions
from pipelines.scheduler import build_scheduler, monitoring_job, run_forever
from pipelines.settings import PipelineSettings
from tests.conftest import register_version

REPO_ROOT = Path(__file__).resolve().parents[2]


def test_jobs_use_the_configured_crons_and_fire():
    settings = MonitoringSettings(monitoring_cron="0 6 * * *", retraining_cron="0 3 * * 1")
    fired = threading.Event()
    scheduler = build_scheduler(settings, fired.set, lambda: None)
    stop = threading.Event()
    runner = threading.Thread(target=run_forever, args=(scheduler, stop))
    runner.start()
    try:
        jobs = {job.id: job for job in scheduler.get_jobs()}
        assert set(jobs) == {"monitoring", "retraining"}
        assert jobs["monitoring"].next_run_time.hour == 6
        assert jobs["retraining"].next_run_time.weekday() == 0
        jobs["monitoring"].modify(next_run_time=datetime.now(UTC))
        assert fired.wait(timeout=30), "the monitoring job did not fire"
    finally:
        stop.set()
        runner.join(timeout=30)
    assert not runner.is_alive() and not scheduler.running


def test_the_runner_process_stops_on_sigterm(tmp_path):
    log = tmp_path / "scheduler.log"
    with log.open("w") as handle:
        process = subprocess.Popen(
            [sys.executable, "-m", "pipelines.scheduler"],
            cwd=REPO_ROOT,
            env=os.environ | {"MONITORING_REPORTS_DIR": str(tmp_path)},
            stdout=handle,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 300  # generous: the other xdist worker may be busy
        while "scheduled retraining" not in log.read_text() and time.monotonic() < deadline:
            time.sleep(0.2)
        process.send_signal(signal.SIGTERM)
        assert process.wait(timeout=30) == 0
    output = log.read_text()
    assert "scheduled monitoring" in output and "stopped" in output


def test_crontab_weekdays_mean_what_cron_means():
    from pipelines.scheduler import cron_trigger

    monday = cron_trigger("0 3 * * 1").get_next_fire_time(None, datetime(2026, 11, 29, tzinfo=UTC))
    assert monday.weekday() == 0 and monday.hour == 3  # 2026-11-30 is a Monday
    weekend = cron_trigger("0 9 * * 6,0")
    first = weekend.get_next_fire_time(None, datetime(2026, 11, 30, tzinfo=UTC))
    assert first.weekday() == 5


@pytest.mark.slow
def test_the_monitoring_job_is_a_dagster_run_the_drift_sensor_sees(
    tmp_path, monkeypatch, small_slice
):
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    registry = IntentRegistry(RegistryConfig(uri))
    registry.force_promote(register_version(small_slice, registry, tmp_path / "art"), "test")
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster_home"))
    monkeypatch.setenv("MONITORING_REPORTS_DIR", str(tmp_path / "reports"))
    settings = PipelineSettings(
        conversation_store_url=f"sqlite:///{tmp_path / 'store.db'}",
        lake_dir=tmp_path / "lake",
        mlflow_tracking_uri=uri,
        mlflow_registry_uri=uri,
    )

    assert monitoring_job(settings).exit_code == 0

    with dg.DagsterInstance.get() as instance:
        (run,) = instance.get_runs(filters=dg.RunsFilter(job_name="monitoring_job"))
        assert run.status == dg.DagsterRunStatus.SUCCESS
        event = instance.get_latest_materialization_event(dg.AssetKey("drift_report"))
        assert event is not None and event.run_id == run.run_id
        defs = build_definitions(settings)
        names = ("sources", "mlflow_registry", "monitoring")
        resources = {name: defs.resources[name] for name in names}
        with dg.build_sensor_context(
            instance=instance, resources=resources, definitions=defs
        ) as context:
            tick = drift_retraining_sensor.evaluate_tick(context)
    # No messages: `insufficient_data`, read from the materialisation the scheduler recorded.
    assert "too little traffic to judge" in tick.skip_message

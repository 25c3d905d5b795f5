"""The APScheduler runner fires a job and shuts down cleanly (in-process and on SIGTERM)."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

from monitoring.settings import MonitoringSettings
from pipelines.scheduler import build_scheduler, run_forever

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
        deadline = time.monotonic() + 60
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

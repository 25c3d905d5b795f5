"""APScheduler runner for deployments without the Dagster daemon.

`python -m pipelines.scheduler` runs the Dagster `monitoring_job` daily and `training_job` weekly
on the same cron expressions as the Dagster schedules (MONITORING_MONITORING_CRON,
MONITORING_RETRAINING_CRON, UTC). Each run executes in this process but is recorded in the Dagster
instance (DAGSTER_HOME) like a daemon's run, so a `drift_report` materialisation is there for the
drift-retraining sensor and the UI shows the same history whichever scheduler ran it. It sleeps
between runs (no busy loop) and shuts down cleanly on SIGTERM or SIGINT, letting a running job
finish. A bad setting is one line naming its variable (exit code 2).
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys
import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from models.settings_errors import SettingsProblem, load_settings
from monitoring.settings import MonitoringSettings
from pipelines.settings import PipelineSettings

logger = logging.getLogger("pipelines.scheduler")
MONITORING_JOB = "monitoring_job"
TRAINING_JOB = "training_job"


@dataclass(frozen=True)
class ScheduledRun:
    """One Dagster job run the scheduler started, and how it ended."""

    job_name: str
    exit_code: int  # 0: the run succeeded (pipelines.cli.materialize)


def run_job(job_name: str, settings: PipelineSettings) -> ScheduledRun:
    """Run a Dagster job in-process, recorded in the instance at DAGSTER_HOME.

    The same path as `make monitor` / `make pipeline`: the run, its materialisations (with the
    drift verdict) and its asset checks land where the daemon's sensors and the UI read them.
    """
    from pipelines.cli import materialize

    return ScheduledRun(job_name, materialize(settings, job_name))


def monitoring_job(settings: PipelineSettings) -> ScheduledRun:
    """The Dagster monitoring job: the drift report; alerts go out from inside it."""
    return run_job(MONITORING_JOB, settings)


def retraining_job(settings: PipelineSettings) -> ScheduledRun:
    """The Dagster training job (the gate decides whether the new version serves)."""
    return run_job(TRAINING_JOB, settings)


DAY_NAMES = ("sun", "mon", "tue", "wed", "thu", "fri", "sat", "sun")


def cron_trigger(expression: str) -> CronTrigger:
    """A trigger for a standard 5-field crontab line, read the way Dagster and cron read it.

    APScheduler 3 numbers weekdays from Monday = 0, so `from_crontab("0 3 * * 1")` fires on
    Tuesdays; weekday numbers are turned into names first (0 and 7 are Sunday).
    """
    fields = expression.split()
    if len(fields) != 5:
        raise ValueError(f"cron expression {expression!r} must have 5 fields")
    minute, hour, day, month, weekdays = fields
    return CronTrigger(
        minute=minute,
        hour=hour,
        day=day,
        month=month,
        day_of_week=_weekday_names(weekdays),
        timezone="UTC",
    )


def _weekday_names(field: str) -> str:
    def name(token: str) -> str:
        return DAY_NAMES[int(token)] if token.isdigit() else token

    parts = []
    for part in field.split(","):
        if "/" in part:
            raise ValueError(f"weekday steps ({field!r}) are not supported; list the days")
        parts.append("-".join(name(bound) for bound in part.split("-")))
    return ",".join(parts)


def build_scheduler(
    settings: MonitoringSettings,
    monitor: Callable[[], Any],
    retrain: Callable[[], Any],
) -> BackgroundScheduler:
    """A scheduler with both jobs on their cron triggers (not started)."""
    scheduler = BackgroundScheduler(timezone="UTC", job_defaults={"coalesce": True})
    scheduler.add_job(
        _logged(monitor, "monitoring"),
        cron_trigger(settings.monitoring_cron),
        id="monitoring",
        max_instances=1,
        misfire_grace_time=3600,
    )
    scheduler.add_job(
        _logged(retrain, "retraining"),
        cron_trigger(settings.retraining_cron),
        id="retraining",
        max_instances=1,
        misfire_grace_time=3600,
    )
    return scheduler


def _logged(job: Callable[[], Any], name: str) -> Callable[[], None]:
    def run() -> None:
        logger.info("%s job starting", name)
        try:
            logger.info("%s job done: %s", name, job())
        except Exception:  # the scheduler keeps running; the next trigger tries again
            logger.exception("%s job failed", name)

    return run


def run_forever(scheduler: BackgroundScheduler, stop: threading.Event) -> None:
    """Start, wait for a stop signal (sleeping, not polling), then shut down cleanly."""
    scheduler.start()
    for job in scheduler.get_jobs():
        logger.info("scheduled %s: next run %s", job.id, job.next_run_time)
    stop.wait()
    logger.info("stopping: waiting for running jobs to finish")
    scheduler.shutdown(wait=True)
    logger.info("stopped")


def main(argv: list[str] | None = None) -> int:
    """Parse flags, install signal handlers and run until told to stop; returns the exit code."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-now", choices=["monitoring", "retraining"], help="run once and exit")
    args = parser.parse_args(argv)
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        # Both read once, before anything is scheduled: a bad value is found now, not at 03:00.
        pipeline = load_settings(PipelineSettings)
        settings = load_settings(MonitoringSettings)
    except SettingsProblem as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    if args.run_now == "monitoring":
        return monitoring_job(pipeline).exit_code
    if args.run_now == "retraining":
        return retraining_job(pipeline).exit_code
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    scheduler = build_scheduler(
        settings, lambda: monitoring_job(pipeline), lambda: retraining_job(pipeline)
    )
    run_forever(scheduler, stop)
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""APScheduler runner for deployments without the Dagster daemon.

`python -m pipelines.scheduler` runs the daily monitoring job and the weekly retraining job on
the same cron expressions as the Dagster schedules (MONITORING_MONITORING_CRON,
MONITORING_RETRAINING_CRON, UTC). It sleeps between runs (no busy loop) and shuts down cleanly on
SIGTERM or SIGINT, letting a running job finish.
"""

from __future__ import annotations

import argparse
import logging
import signal
import threading
from collections.abc import Callable
from typing import Any

from apscheduler.schedulers.background import BackgroundScheduler
from apscheduler.triggers.cron import CronTrigger

from monitoring.settings import MonitoringSettings

logger = logging.getLogger("pipelines.scheduler")


def monitoring_job(settings: MonitoringSettings) -> dict[str, Any]:
    """One monitoring run; alerts go out from inside it."""
    from monitoring.job import run_monitoring

    result = run_monitoring(settings)
    return {"verdict": result.verdict, "report": str(result.run_dir / "index.html")}


def retraining_job() -> dict[str, Any]:
    """The Dagster training job, in-process and recorded in DAGSTER_HOME (the gate decides)."""
    from pipelines.cli import materialize
    from pipelines.settings import PipelineSettings

    return {"exit_code": materialize(PipelineSettings())}


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


def main() -> None:
    """Parse flags, install signal handlers and run until told to stop."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--run-now", choices=["monitoring", "retraining"], help="run once and exit")
    args = parser.parse_args()
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    settings = MonitoringSettings()
    if args.run_now == "monitoring":
        print(monitoring_job(settings))
        return
    if args.run_now == "retraining":
        print(retraining_job())
        return
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    scheduler = build_scheduler(settings, lambda: monitoring_job(settings), retraining_job)
    run_forever(scheduler, stop)


if __name__ == "__main__":
    main()

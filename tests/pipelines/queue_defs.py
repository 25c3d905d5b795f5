"""The code location of the run queue test: runs tagged like training_job's.

A sensor requests two training runs at once; each run's op waits until the test creates the file
named by $QUEUE_TEST_RELEASE, so the test sees what the daemon's QueuedRunCoordinator starts and
what it holds back.
"""

import os
import time
from pathlib import Path

import dagster as dg

RUN_KIND_TAG = "supportloop/run-kind"  # pipelines/automation.py (the test checks they agree)


@dg.op
def wait_for_release() -> None:
    """Hold the run open until the test releases it."""
    release = Path(os.environ["QUEUE_TEST_RELEASE"])
    while not release.exists():
        time.sleep(0.2)


@dg.job(executor_def=dg.in_process_executor, tags={RUN_KIND_TAG: "training"})
def training() -> None:
    """Stands for training_job."""
    wait_for_release()


@dg.sensor(
    job=training,
    minimum_interval_seconds=1,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def request_runs(context: dg.SensorEvaluationContext) -> list[dg.RunRequest]:
    """Two training runs, once (run keys)."""
    return [dg.RunRequest(run_key="training-1"), dg.RunRequest(run_key="training-2")]


defs = dg.Definitions(jobs=[training], sensors=[request_runs])

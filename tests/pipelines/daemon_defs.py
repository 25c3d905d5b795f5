"""The code location of the run monitoring test.

`run_in_process` executes `waits` the way `make pipeline` executes its jobs: in its own process,
outside any run launcher, stamped with that process (models/process_stamp.py). The sensor, as
schedules and sensors do in production, then requests `quick`, which waits in the one-slot queue
(dagster.yaml) behind it.
"""

import time

import dagster as dg

from models.process_stamp import ProcessStamp


@dg.op
def wait_to_be_killed() -> None:
    """Long enough for the test to kill this run's process."""
    time.sleep(600)


@dg.op
def finish() -> None:
    """Nothing: the run only has to start and succeed."""


@dg.job(executor_def=dg.in_process_executor)
def waits() -> None:
    """A run whose process the test kills."""
    wait_to_be_killed()


@dg.job(executor_def=dg.in_process_executor)
def quick() -> None:
    """A run queued behind `waits`."""
    finish()


@dg.sensor(job=quick, minimum_interval_seconds=1, default_status=dg.DefaultSensorStatus.RUNNING)
def start_quick(context: dg.SensorEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    """`quick`, once, as soon as a `waits` run exists."""
    if context.instance.get_runs(filters=dg.RunsFilter(job_name="waits")):
        return dg.RunRequest(run_key="quick")
    return dg.SkipReason("no `waits` run yet")


def run_in_process() -> None:
    """Execute `waits` in this process, stamped as pipelines/cli.py stamps its runs."""
    with dg.DagsterInstance.get() as instance:
        waits.execute_in_process(instance=instance, tags=ProcessStamp.current().to_tags())


defs = dg.Definitions(jobs=[waits, quick], sensors=[start_quick])

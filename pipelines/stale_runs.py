"""Dagster runs whose in-process executor was killed: marked FAILURE by the next CLI run.

`python -m pipelines.cli materialize` (`make pipeline`) executes in its own process, outside
any run launcher, so the daemon's run monitoring can only catch such a run once it exceeds
`max_runtime_seconds` (dagster.yaml). The CLI stamps each run with its process
(`models/process_stamp.py`); the next CLI invocation on the same host fails the runs whose
process is gone at once, so they neither stay STARTED nor hold the queue's only slot.
"""

from __future__ import annotations

import logging

import dagster as dg

from models.process_stamp import Liveness, ProcessStamp

logger = logging.getLogger(__name__)
_IN_PROGRESS = [dg.DagsterRunStatus.STARTING, dg.DagsterRunStatus.STARTED]


def fail_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark every in-progress run whose stamped process has died as FAILURE; their ids."""
    failed = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=_IN_PROGRESS)):
        run = record.dagster_run
        stamp = ProcessStamp.from_tags(run.tags)
        if stamp is None or stamp.liveness() is not Liveness.DEAD:
            continue  # launched by the daemon (run monitoring's job), or still running
        message = f"process {stamp.pid} on {stamp.host} ended without finishing this run"
        instance.report_run_failed(run, message=message)
        logger.warning("Dagster run %s marked FAILURE: %s", run.run_id, message)
        failed.append(run.run_id)
    return failed

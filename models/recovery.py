"""What a killed training process left behind, found and settled by the next training run.

Called by the `intent_model` asset before it trains:

1. RUNNING runs of the training experiment whose owning process is gone end as FAILED, tagged
   `supportloop/interrupted` with the reason. The owner is known from the process stamp each run
   carries (`models/process_stamp.py`); a run stamped on another host, or written before stamps
   existed, is only closed once it has been RUNNING longer than `STALE_AFTER`, far beyond any
   training run, so a live run elsewhere is never failed.
2. A complete version for the fingerprint is reused (nothing is trained or logged).
3. A FINISHED run for the fingerprint that has a logged model but no version (the process died
   between ending the run and registering it) is registered now instead of training again.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from typing import TYPE_CHECKING

from models.process_stamp import Liveness, ProcessStamp
from models.registry import TAG_FINGERPRINT, IntentRegistry
from models.tracking import RUN_TAG_MODEL_ID, RUN_TAG_REGISTERED, register_run

if TYPE_CHECKING:  # types only: MLflow is imported by the registry's client when first used
    from mlflow import MlflowClient
    from mlflow.entities import Run
    from mlflow.entities.model_registry import ModelVersion

logger = logging.getLogger(__name__)
TAG_INTERRUPTED = "supportloop/interrupted"
STALE_AFTER = timedelta(hours=12)
_MAX_RUNS = 1000


class Outcome(Enum):
    """How the version for a fingerprint was obtained without training."""

    NONE = "none"  # nothing usable: train
    REUSED = "reused"  # a complete version existed
    REGISTERED_LEFTOVER = "registered_leftover"  # a finished, unregistered run was registered


@dataclass(frozen=True)
class Recovery:
    """What `recover` did."""

    outcome: Outcome
    version: ModelVersion | None = None
    failed_runs: list[str] = field(default_factory=list)


def recover(registry: IntentRegistry, experiment_name: str, fingerprint: str) -> Recovery:
    """Close interrupted runs, then find or finish a version for `fingerprint`."""
    experiment = registry.client.get_experiment_by_name(experiment_name)
    failed = (
        fail_interrupted_runs(registry.client, experiment.experiment_id)
        if experiment is not None
        else []
    )
    existing = registry.find_by_fingerprint(fingerprint)
    if existing is not None:
        return Recovery(Outcome.REUSED, existing, failed)
    leftover = (
        unregistered_run(registry.client, experiment.experiment_id, fingerprint)
        if experiment is not None
        else None
    )
    if leftover is None:
        return Recovery(Outcome.NONE, None, failed)
    logger.warning("run %s finished but was never registered: registering it now", leftover)
    return Recovery(Outcome.REGISTERED_LEFTOVER, register_run(registry, leftover), failed)


def fail_interrupted_runs(
    client: MlflowClient,
    experiment_id: str,
    now: datetime | None = None,
    stale_after: timedelta = STALE_AFTER,
) -> list[str]:
    """End every RUNNING run of the experiment whose process is gone as FAILED; their ids."""
    now = now or datetime.now(UTC)
    running = client.search_runs(
        [experiment_id], filter_string="attributes.status = 'RUNNING'", max_results=_MAX_RUNS
    )
    failed = []
    for run in running:
        reason = interruption(run, now, stale_after)
        if reason is None:
            continue
        client.set_tag(run.info.run_id, TAG_INTERRUPTED, reason)
        client.set_terminated(run.info.run_id, "FAILED")
        logger.warning("MLflow run %s marked FAILED: %s", run.info.run_id, reason)
        failed.append(run.info.run_id)
    return failed


def interruption(run: Run, now: datetime, stale_after: timedelta) -> str | None:
    """Why a RUNNING run can no longer finish, or None while its owner may still be working."""
    stamp = ProcessStamp.from_tags(run.data.tags)
    if stamp is not None:
        liveness = stamp.liveness()
        if liveness is Liveness.ALIVE:
            return None
        if liveness is Liveness.DEAD:
            return f"interrupted: process {stamp.pid} on {stamp.host} ended without closing it"
    age = now - datetime.fromtimestamp(run.info.start_time / 1000, UTC)
    if age > stale_after:
        return f"interrupted: RUNNING for {age} without a live owner known here"
    return None


def unregistered_run(client: MlflowClient, experiment_id: str, fingerprint: str) -> str | None:
    """The newest FINISHED run for `fingerprint` with a logged model and no version, if any."""
    runs = client.search_runs(
        [experiment_id],
        filter_string=(
            f"attributes.status = 'FINISHED' and tags.{TAG_FINGERPRINT} = '{fingerprint}'"
        ),
        order_by=["attributes.start_time DESC"],
        max_results=_MAX_RUNS,
    )
    return next(
        (
            run.info.run_id
            for run in runs
            if RUN_TAG_MODEL_ID in run.data.tags and RUN_TAG_REGISTERED not in run.data.tags
        ),
        None,
    )

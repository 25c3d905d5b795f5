"""Named crash points of training and registration, for testing what a killed process leaves.

`SUPPORTLOOP_FAULT_AT=<boundary>` makes the process SIGKILL itself when it reaches that
boundary: no `finally`, no atexit, no flush, exactly what an OOM kill or a lost node does. The
crash-recovery test runs `python -m pipelines.cli materialize` with each boundary in turn and
checks that the rerun leaves a consistent registry. With `SUPPORTLOOP_FAULT_MODE=raise` the
boundary raises `InjectedFault` instead: a step that fails while its process lives on, which is
how the CLI's failure summary is tested. Unset (always, outside tests) it costs one environment
lookup per boundary.
"""

from __future__ import annotations

import logging
import os
import signal
from enum import StrEnum

FAULT_ENV = "SUPPORTLOOP_FAULT_AT"
FAULT_MODE_ENV = "SUPPORTLOOP_FAULT_MODE"  # "kill" (default) or "raise"
logger = logging.getLogger(__name__)


class Boundary(StrEnum):
    """The step boundaries of `intent_model` and `model_promotion`, in the order they pass."""

    RUN_STARTED = "run_started"  # MLflow run open, nothing logged yet
    MODEL_LOGGED = "model_logged"  # metrics, artifacts and model logged; run still RUNNING
    RUN_ENDED = "run_ended"  # run FINISHED, no model version yet
    VERSION_CREATED = "version_created"  # version created together with its tags
    CHALLENGER_SET = "challenger_set"  # alias `challenger` set, gate not yet decided
    GATE_RECORDED = "gate_recorded"  # decision stored on the version, champion not yet moved
    CHAMPION_SET = "champion_set"  # alias `champion` moved, `challenger` not yet removed


class InjectedFault(RuntimeError):
    """The error a boundary raises under SUPPORTLOOP_FAULT_MODE=raise."""


def reached(boundary: Boundary) -> None:
    """SIGKILL this process (or raise InjectedFault) if SUPPORTLOOP_FAULT_AT names `boundary`."""
    if os.environ.get(FAULT_ENV) != boundary.value:
        return
    if os.environ.get(FAULT_MODE_ENV) == "raise":
        raise InjectedFault(f"fault injected at {boundary.value}")
    logger.warning("fault injection: SIGKILL at %s", boundary.value)
    os.kill(os.getpid(), signal.SIGKILL)

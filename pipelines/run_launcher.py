"""Dagster's default run launcher, plus the worker health check that run monitoring needs.

With the stock `DefaultRunLauncher`, run monitoring cannot tell that a run's process died: it
only fails the run once `max_runtime_seconds` has passed, and meanwhile the STARTED run holds the
queue's single slot (dagster.yaml), so scheduled and sensor runs wait behind a corpse. This
launcher launches exactly as the default one does and answers `check_run_worker_health` from
the run's own records:

- runs of `python -m pipelines.cli materialize` carry the stamp of their process
  (`models/process_stamp.py`);
- runs launched through a code server log "Started process for run (pid: N)"; the pid is checked
  when the code server is on this host (the case of `dagster dev` and `dagster-daemon run`).

A worker proven dead is reported FAILED (run monitoring then marks the run FAILURE); in every
other case, including "cannot tell from here", it is reported RUNNING and `max_runtime_seconds`
stays the backstop.
"""

from __future__ import annotations

import json
import socket

import dagster as dg
from dagster._core.launcher.base import CheckRunHealthResult, WorkerStatus
from dagster._core.storage.tags import GRPC_INFO_TAG

from models.process_stamp import START_TOLERANCE_S, Liveness, ProcessStamp, pid_liveness

_LOCAL_HOSTS = {"localhost", "127.0.0.1", "::1", "0.0.0.0", ""}
_WORKER_STARTED = "Started process for run"  # dagster/_grpc/impl.py, dagster/_cli/api.py


class LocalRunLauncher(dg.DefaultRunLauncher):
    """DefaultRunLauncher whose run workers' health run monitoring can check."""

    @property
    def supports_check_run_worker_health(self) -> bool:
        """Run monitoring may ask; see check_run_worker_health."""
        return True

    def check_run_worker_health(self, run: dg.DagsterRun) -> CheckRunHealthResult:
        """FAILED when the run's process is provably gone, RUNNING otherwise."""
        liveness, worker = self._worker_liveness(run)
        if liveness is Liveness.DEAD:
            return CheckRunHealthResult(WorkerStatus.FAILED, f"{worker} is no longer running")
        return CheckRunHealthResult(WorkerStatus.RUNNING, f"{worker}: {liveness.value}")

    def _worker_liveness(self, run: dg.DagsterRun) -> tuple[Liveness, str]:
        stamp = ProcessStamp.from_tags(run.tags)
        if stamp is not None:
            return stamp.liveness(), f"process {stamp.pid} on {stamp.host}"
        server = json.loads(run.tags.get(GRPC_INFO_TAG) or "{}")
        if server.get("host", "") not in {*_LOCAL_HOSTS, socket.gethostname()}:
            return Liveness.UNKNOWN, f"run worker on {server['host']}"
        started = self._worker_start(run.run_id)
        if started is None:
            return Liveness.UNKNOWN, "run worker not started yet"
        pid, logged_at = started
        # The worker started before it logged its pid; a later start means a reused pid.
        return pid_liveness(pid, 0.0, logged_at + START_TOLERANCE_S), f"run worker process {pid}"

    def _worker_start(self, run_id: str) -> tuple[int, float] | None:
        """The pid the newest run worker logged, and when it logged it."""
        events = self._instance.all_logs(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT)
        for entry in reversed(events):
            # Only the run worker's own start event: other engine events carry pids too.
            if not entry.message.startswith(_WORKER_STARTED) or entry.dagster_event is None:
                continue
            # EngineEventData.in_process stores the pid as text.
            pid = entry.dagster_event.engine_event_data.metadata.get("pid")
            if pid is not None and isinstance(pid.value, str | int):
                return int(pid.value), entry.timestamp
        return None

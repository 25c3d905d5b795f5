"""`make pipeline` SIGKILLed at every step boundary of training and promotion, then rerun.

Each link of the chain runs the real CLI (`pipelines.cli materialize`) in its own process on a
small Banking77 slice with real SQLite stores, and kills itself at the next boundary
(SUPPORTLOOP_FAULT_AT, models/faults.py); the next link is the rerun that must settle what the
previous one left, before it is killed in turn at the following boundary. After every crash the
registry must show nothing half-made, and after the final clean run: one complete version for
the fingerprint, champion on it, no MLflow run RUNNING and no Dagster run STARTED.

A chain (7 crashes + 1 clean run) rather than 7 independent crash/rerun pairs halves the cost;
every boundary is still followed by a rerun that starts from exactly what the crash left.
"""

from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
import pytest
import yaml
from mlflow import MlflowClient

from models.faults import FAULT_ENV, Boundary
from models.promotion_state import PromotionState
from models.recovery import TAG_INTERRUPTED
from models.registry import (
    CHALLENGER,
    CHAMPION,
    TAG_FINGERPRINT,
    IntentRegistry,
    RegistryConfig,
    is_complete,
)
from models.run_contents import TAG_TRIAL
from tests.conftest import REPO_ROOT, write_slice

pytestmark = pytest.mark.slow
LINK_TIMEOUT_S = 600
# The smallest search space: one candidate is all a crash needs.
RUN_CONFIG = {"ops": {"intent_model": {"config": {"candidates": ["tfidf_logreg"]}}}}


class CrashDriver:
    """tests/pipelines/crash_driver.py in a session of its own (killed whole at the end)."""

    def __init__(self, env: dict[str, str], run_config: Path, log_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-m", "tests.pipelines.crash_driver", str(run_config), str(log_dir)],
            cwd=REPO_ROOT,
            env=env,
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )

    def run(self, boundary: str) -> tuple[int, str]:
        """One CLI run killed at `boundary` (or `clean`): its return code and log text."""
        assert self.process.stdin is not None and self.process.stdout is not None
        self.process.stdin.write(boundary + "\n")
        self.process.stdin.flush()
        ready, _, _ = select.select([self.process.stdout], [], [], LINK_TIMEOUT_S)
        assert ready, f"no answer for {boundary} within {LINK_TIMEOUT_S} s"
        answer = json.loads(self.process.stdout.readline())
        return answer["returncode"], Path(answer["log"]).read_text(errors="replace")

    def stop(self) -> None:
        """Close stdin (the driver exits) and make sure nothing of it is left."""
        if self.process.stdin is not None:
            self.process.stdin.close()
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=30)
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)  # a child still running, if any
        self.process.wait(timeout=30)


@pytest.fixture()
def workspace(tmp_path: Path, small_slice) -> dict:
    """Stores of one pipeline in tmp_path, the env that points the CLI at them, a run config."""
    (tmp_path / "incoming").mkdir()
    (tmp_path / "logs").mkdir()
    run_config = tmp_path / "run_config.yaml"
    run_config.write_text(yaml.safe_dump(RUN_CONFIG))
    tracking_uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    env = {key: value for key, value in os.environ.items() if key != FAULT_ENV} | {
        "BANKING77_DIR": str(write_slice(small_slice, tmp_path / "banking77")),
        "LABELLED_CSV_PATHS": "[]",
        "CONVERSATION_JSONL_DIR": str(tmp_path / "incoming"),
        "CONVERSATION_STORE_URL": f"sqlite:///{tmp_path / 'store.db'}",
        "LAKE_DIR": str(tmp_path / "lake"),
        "MLFLOW_TRACKING_URI": tracking_uri,
        "MLFLOW_REGISTRY_URI": tracking_uri,
        "MLFLOW_ARTIFACT_ROOT": str(tmp_path / "artifacts"),
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "REPORTS_DIR": str(tmp_path / "reports"),
    }
    registry = IntentRegistry(RegistryConfig(tracking_uri, tracking_uri))
    return {"root": tmp_path, "env": env, "run_config": run_config, "registry": registry}


def _running_runs(client: MlflowClient) -> list[str]:
    return [
        run.info.run_id
        for run in client.search_runs(
            [e.experiment_id for e in client.search_experiments()],
            filter_string="attributes.status = 'RUNNING'",
        )
    ]


def _assert_nothing_half_made(registry: IntentRegistry, boundary: str) -> None:
    versions = registry.versions()
    assert len(versions) <= 1, f"after {boundary}: {[v.version for v in versions]}"
    assert all(is_complete(v) for v in versions), f"after {boundary}: an incomplete version"
    assert len(_running_runs(registry.client)) <= 1  # at most the run this crash left


def test_sigkill_at_every_boundary_then_rerun_leaves_one_complete_champion(workspace, monkeypatch):
    registry = workspace["registry"]
    driver = CrashDriver(workspace["env"], workspace["run_config"], workspace["root"] / "logs")
    seconds: dict[str, float] = {}
    try:
        for boundary in Boundary:
            started = time.monotonic()
            returncode, log = driver.run(boundary.value)
            seconds[boundary.value] = time.monotonic() - started
            assert returncode == -signal.SIGKILL, f"{boundary} did not crash:\n{log[-3000:]}"
            assert f"SIGKILL at {boundary.value}" in log
            _assert_nothing_half_made(registry, boundary.value)
        started = time.monotonic()
        returncode, log = driver.run("clean")
        seconds["clean"] = time.monotonic() - started
        assert returncode == 0, log[-3000:]
    finally:
        driver.stop()
    print("\nseconds per run:", {name: round(value) for name, value in seconds.items()})

    # One complete version, created from the run killed after it ended (never trained twice).
    [version] = registry.versions()
    assert is_complete(version) and version.tags[TAG_FINGERPRINT]
    registry.load_pipeline(version.version)
    assert str(registry.version_by_alias(CHAMPION).version) == str(version.version)
    assert registry.version_by_alias(CHALLENGER) is None
    [decision] = registry.gate_entries(version.version)
    assert decision.passed is True and decision.promotion == PromotionState.DONE

    client = registry.client
    experiment = client.get_experiment_by_name("intent-classifier")
    every_run = client.search_runs([experiment.experiment_id])
    runs = [run for run in every_run if "mlflow.parentRunId" not in run.data.tags]
    assert sorted(run.info.status for run in runs) == ["FAILED", "FAILED", "FINISHED"]
    # Candidate child runs: one under each run that got past fitting (killed after logging
    # its model, and the one registered), each finished before its parent went on.
    children = [run for run in every_run if "mlflow.parentRunId" in run.data.tags]
    # ...and the search's trial runs under them (TRAIN_SEARCH_TRIALS), finished as well.
    assert all(run.info.status == "FINISHED" for run in children)
    children = [run for run in children if TAG_TRIAL not in run.data.tags]
    assert [run.info.status for run in children] == ["FINISHED", "FINISHED"]
    for run in runs:
        if run.info.status == "FAILED":  # the runs killed while RUNNING
            assert run.data.tags[TAG_INTERRUPTED].startswith("interrupted: process")
    assert [run.info.run_id for run in runs if run.info.status == "FINISHED"] == [version.run_id]
    assert _running_runs(client) == []

    monkeypatch.setenv("DAGSTER_HOME", workspace["env"]["DAGSTER_HOME"])  # dagster.yaml reads it
    with dg.DagsterInstance.from_config(workspace["env"]["DAGSTER_HOME"]) as instance:
        statuses = [record.dagster_run.status for record in instance.get_run_records()]
    assert statuses.count(dg.DagsterRunStatus.FAILURE) == len(Boundary)
    assert statuses.count(dg.DagsterRunStatus.SUCCESS) == 1
    assert len(statuses) == len(Boundary) + 1

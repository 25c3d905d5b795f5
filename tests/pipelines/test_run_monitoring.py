"""Run monitoring in a real `dagster-daemon`: a run whose process is killed (as `make pipeline`
can be) ends FAILURE, and the sensor run queued behind it (the queue has one slot, dagster.yaml)
starts and succeeds.

Without run monitoring, and with it but the stock launcher until `max_runtime_seconds` (3 h),
the dead run stays STARTED and the queued run never starts. (Runs the daemon launches itself are
also failed by their code server while it lives; see pipelines/run_launcher.py.)
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TypeVar

import dagster as dg
import psutil
import pytest
import yaml

from tests.conftest import REPO_ROOT

pytestmark = pytest.mark.slow
DEFS = Path(__file__).with_name("daemon_defs.py")
BIN = Path(sys.executable).parent
WAIT_S = 240
T = TypeVar("T")


def wait_for(what: str, probe: Callable[[], T | None]) -> T:
    """Poll `probe` until it returns something (fails the test after WAIT_S)."""
    deadline = time.monotonic() + WAIT_S
    while time.monotonic() < deadline:
        found = probe()
        if found is not None and found is not False:
            return found
        time.sleep(0.5)
    pytest.fail(f"timed out waiting for {what}")


@pytest.fixture()
def dagster_home(tmp_path: Path, monkeypatch) -> Path:
    """DAGSTER_HOME holding the repo's dagster.yaml with shorter polling intervals."""
    config = yaml.safe_load((REPO_ROOT / "dagster.yaml").read_text())
    assert config["run_monitoring"]["enabled"] is True
    # Only the intervals change: the test cannot wait 30 s per monitoring poll.
    config["run_monitoring"]["poll_interval_seconds"] = 1
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 1
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    # Create the SQLite storage now: processes creating it at once corrupt its schema version.
    with dg.DagsterInstance.get() as instance:
        instance.get_runs(limit=1)
    return home


@pytest.fixture()
def daemon(dagster_home: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the test code location; stopped with its whole process tree."""
    log = (dagster_home / "daemon.log").open("w")
    process = subprocess.Popen(
        [str(BIN / "dagster-daemon"), "run", "-f", str(DEFS), "-d", str(REPO_ROOT)],
        cwd=REPO_ROOT,
        env=os.environ | {"DAGSTER_HOME": str(dagster_home)},
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    seen: dict[int, psutil.Process] = {}
    try:
        yield process
    finally:
        try:
            for child in [psutil.Process(process.pid), *psutil.Process(process.pid).children(True)]:
                seen[child.pid] = child
        except psutil.NoSuchProcess:
            pass
        os.killpg(process.pid, signal.SIGTERM)  # the daemon stops its code server itself
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait(timeout=10)
        _, alive = psutil.wait_procs(list(seen.values()), timeout=10)
        for leftover in alive:
            leftover.kill()
        log.close()
        assert not alive, f"left running after the daemon stopped: {alive}"


def run_of(instance: dg.DagsterInstance, job: str) -> dg.DagsterRun | None:
    """The (only) run of `job`."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job))
    return runs[0] if runs else None


def test_a_run_whose_process_died_is_failed_and_the_queue_moves_on(dagster_home, daemon):
    pipeline = subprocess.Popen(
        [sys.executable, "-c", "from tests.pipelines.daemon_defs import run_in_process as r; r()"],
        cwd=REPO_ROOT,
        env=os.environ | {"DAGSTER_HOME": str(dagster_home)},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        with dg.DagsterInstance.get() as instance:
            started = wait_for(
                "the in-process run to start",
                lambda: (
                    (run := run_of(instance, "waits"))
                    and run.status == dg.DagsterRunStatus.STARTED
                    and run
                ),
            )
            queued = wait_for(
                "the sensor's run to wait in the queue (its only slot is taken)",
                lambda: (
                    (run := run_of(instance, "quick"))
                    and run.status == dg.DagsterRunStatus.QUEUED
                    and run
                ),
            )
            # Monitoring has polled the live run every second meanwhile: it must leave it alone.
            assert instance.get_run_by_id(started.run_id).status == dg.DagsterRunStatus.STARTED
            pipeline.kill()
            pipeline.wait(timeout=30)

            wait_for(
                "the killed run to be marked FAILURE",
                lambda: (
                    instance.get_run_by_id(started.run_id).status == dg.DagsterRunStatus.FAILURE
                ),
            )
            failure = instance.all_logs(started.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
            assert f"process {pipeline.pid} on" in failure[-1].message
            assert "is no longer running" in failure[-1].message
            wait_for(
                "the queued run to succeed",
                lambda: instance.get_run_by_id(queued.run_id).status == dg.DagsterRunStatus.SUCCESS,
            )
    finally:
        pipeline.kill()
        pipeline.wait(timeout=30)

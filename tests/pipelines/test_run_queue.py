"""The production instance's run queue in a real `dagster-daemon`: deploy/dagster/dagster.yaml
on a real PostgreSQL. Of two training runs submitted at once, one starts and the other waits
until it has finished (tag concurrency limit 1), though the queue has slots to spare.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import pytest
import yaml

from pipelines.automation import RUN_KIND_TAG, monitoring_job, training_job
from tests.celery_workers import stop_tree
from tests.conftest import REPO_ROOT
from tests.pipelines import queue_defs
from tests.pipelines.test_run_monitoring import BIN, wait_for
from tests.postgres import PostgresServer

pytestmark = pytest.mark.slow
PRODUCTION_YAML = REPO_ROOT / "deploy/dagster/dagster.yaml"
HOLD_S = 5  # how long the second training run must stay queued while the first runs


def production_config() -> dict:
    """deploy/dagster/dagster.yaml, parsed."""
    return yaml.safe_load(PRODUCTION_YAML.read_text(encoding="utf-8"))


@pytest.fixture()
def home(tmp_path: Path, postgres_server: PostgresServer, monkeypatch: pytest.MonkeyPatch) -> Path:
    """DAGSTER_HOME with the production dagster.yaml (dequeue every second) on PostgreSQL."""
    config = production_config()
    config["run_coordinator"]["config"]["dequeue_interval_seconds"] = 1
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(yaml.safe_dump(config), encoding="utf-8")
    postgres_server.create_database("dagster_queue")
    monkeypatch.setenv("DAGSTER_PG_URL", postgres_server.url("dagster_queue", driver="psycopg2"))
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("QUEUE_TEST_RELEASE", str(tmp_path / "release"))
    return home


@pytest.fixture()
def daemon(home: Path) -> Iterator[subprocess.Popen]:
    """`dagster-daemon run` on the queue test's code location, stopped with its process tree."""
    with (home / "daemon.log").open("w") as log:
        process = subprocess.Popen(
            [str(BIN / "dagster-daemon"), "run", "-f", queue_defs.__file__, "-d", str(REPO_ROOT)],
            cwd=REPO_ROOT,
            env=dict(os.environ),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        yield process
    finally:
        stop_tree(process)


def test_the_code_location_tags_runs_as_the_limits_expect() -> None:
    coordinator = production_config()["run_coordinator"]["config"]
    # More than one run at a time in all: the tag's limit is what holds a second training run.
    assert coordinator["max_concurrent_runs"] > 1
    limits = coordinator["tag_concurrency_limits"]
    limited = {(limit["key"], limit["value"]): limit["limit"] for limit in limits}
    assert queue_defs.RUN_KIND_TAG == RUN_KIND_TAG
    assert limited[(RUN_KIND_TAG, training_job.tags[RUN_KIND_TAG])] == 1
    assert limited[(RUN_KIND_TAG, monitoring_job.tags[RUN_KIND_TAG])] == 1


def statuses(instance: dg.DagsterInstance, job: str) -> list[dg.DagsterRunStatus]:
    """The statuses of `job`'s runs, sorted by name."""
    runs = instance.get_runs(filters=dg.RunsFilter(job_name=job))
    return sorted((run.status for run in runs), key=str)


def test_the_daemon_starts_one_training_run_at_a_time(home: Path, daemon) -> None:
    started, queued = dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.QUEUED
    with dg.DagsterInstance.get() as instance:
        wait_for(
            "one training run started, the other queued",
            lambda: statuses(instance, "training") == sorted([queued, started], key=str),
        )
        deadline = time.monotonic() + HOLD_S
        while time.monotonic() < deadline:  # the daemon dequeues every second meanwhile
            assert started in statuses(instance, "training")
            assert queued in statuses(instance, "training"), "two training runs at once"
            time.sleep(0.5)
        Path(os.environ["QUEUE_TEST_RELEASE"]).touch()
        wait_for(
            "every run to succeed",
            lambda: statuses(instance, "training") == [dg.DagsterRunStatus.SUCCESS] * 2,
        )
        first, second = sorted(
            (
                instance.get_run_stats(run.run_id)
                for run in instance.get_runs(filters=dg.RunsFilter(job_name="training"))
            ),
            key=lambda stats: stats.start_time or 0,
        )
        assert second.start_time is not None and first.end_time is not None
        assert second.start_time >= first.end_time

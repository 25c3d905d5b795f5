"""training_job on the production profile's executor: its steps on real Celery workers (Redis
broker), the Dagster instance on a real PostgreSQL (deploy/dagster/dagster.yaml).

The run is launched as the daemon's run worker launches it (`execute_job` of the code location
`pipelines.definitions`): this process orchestrates, each step is a Celery task that a worker
process executes. Then a worker's pool process is killed (SIGKILL) while it trains: the run
must end FAILURE at once, naming the lost worker, and a rerun, every step on the workers, must
leave exactly one version (one test: the rerun is also the proof that the executor works).
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from dagster._core.definitions.reconstruct import ReconstructableRepository
from mlflow import MlflowClient

from tests.celery_workers import Worker, running_redis, running_workers
from tests.conftest import REPO_ROOT, write_slice
from tests.postgres import PostgresServer

pytestmark = pytest.mark.slow
MODEL = "intent-classifier"
TRAINING_STEP = "intent_model"
KILL_WAIT_S = 600


@dataclass(frozen=True)
class Cluster:
    """The environment every process shares, and the running workers."""

    env: dict[str, str]
    workers: list[Worker]
    root: Path


@pytest.fixture(scope="module")
def cluster(tmp_path_factory, postgres_server: PostgresServer, small_slice) -> Iterator[Cluster]:
    """Redis, two Celery workers and a PostgreSQL-backed DAGSTER_HOME for the module."""
    root = tmp_path_factory.mktemp("celery_cluster")
    home = root / "dagster_home"
    home.mkdir()
    shutil.copy(REPO_ROOT / "deploy/dagster/dagster.yaml", home / "dagster.yaml")
    postgres_server.create_database("dagster_celery")
    with running_redis(root) as broker:
        env = os.environ | {
            "DAGSTER_HOME": str(home),
            "DAGSTER_PG_URL": postgres_server.url("dagster_celery", driver="psycopg2"),
            "PIPELINE_EXECUTOR": "celery",
            "CELERY_BROKER_URL": broker,
            "BANKING77_DIR": str(write_slice(small_slice, root / "banking77")),
            "LABELLED_CSV_PATHS": "[]",
            "CONVERSATION_JSONL_DIR": str(root / "incoming"),
            "CONVERSATION_STORE_URL": f"sqlite:///{root / 'store.db'}",
            "LAKE_DIR": str(root / "lake"),
            "REPORTS_DIR": str(root / "reports"),
            "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        }
        with running_workers(2, env, root) as workers:
            yield Cluster(env, workers, root)


@pytest.fixture()
def instance(cluster: Cluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[dg.DagsterInstance]:
    """This process's view of the shared instance (PostgreSQL), with the cluster's settings."""
    for name, value in cluster.env.items():
        monkeypatch.setenv(name, value)
    with dg.DagsterInstance.get() as shared:
        yield shared


def launch(instance: dg.DagsterInstance, tracking_uri: str) -> dg.DagsterRun:
    """One training_job run of the code location, one candidate, MLflow at `tracking_uri`."""
    repository = ReconstructableRepository.for_module(
        "pipelines.definitions", "defs", working_directory=str(REPO_ROOT)
    )
    run_config = {
        "ops": {TRAINING_STEP: {"config": {"candidates": ["tfidf_logreg"]}}},
        "resources": {"mlflow_registry": {"config": {"tracking_uri": tracking_uri}}},
    }
    job = repository.get_reconstructable_job("training_job")
    with dg.execute_job(job, instance, run_config=run_config, raise_on_error=False) as result:
        run = instance.get_run_by_id(result.run_id)
    assert run is not None
    return run


def versions(tracking_uri: str) -> list[str]:
    """The registered versions of the intent model in that MLflow store."""
    client = MlflowClient(tracking_uri, tracking_uri)
    return [str(found.version) for found in client.search_model_versions(f"name = '{MODEL}'")]


def step_hosts(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    """The pids of the processes that started the run's steps."""
    starts = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    return {entry.dagster_event.pid for entry in starts if entry.dagster_event is not None}


def kill_the_training_step(
    instance: dg.DagsterInstance, earlier: set[str], killed: list[int]
) -> None:
    """Wait for a new run's training step to start, then SIGKILL the process executing it."""
    pause = threading.Event()
    for _ in range(KILL_WAIT_S * 2):
        for run in instance.get_runs(filters=dg.RunsFilter(job_name="training_job")):
            if run.run_id in earlier:
                continue
            starts = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.STEP_START)
            for entry in starts:
                event = entry.dagster_event
                if event is not None and event.step_key == TRAINING_STEP:
                    os.kill(event.pid, signal.SIGKILL)
                    killed.append(event.pid)
                    return
        pause.wait(0.5)


def test_a_worker_killed_mid_step_fails_the_run_and_a_rerun_on_the_workers_registers_one(
    cluster: Cluster, instance: dg.DagsterInstance
) -> None:
    tracking_uri = f"sqlite:///{cluster.root / 'mlflow-b.db'}"
    killed: list[int] = []
    earlier = {run.run_id for run in instance.get_runs()}
    pool = {pid for worker in cluster.workers for pid in worker.pool_pids()}
    with dg.DagsterInstance.get() as watcher:
        killer = threading.Thread(target=kill_the_training_step, args=(watcher, earlier, killed))
        killer.start()
        try:
            run = launch(instance, tracking_uri)
        finally:
            killer.join(timeout=KILL_WAIT_S)

    assert killed, "the training step never started"
    assert killed[0] in pool  # a worker's pool process executed the step
    assert run.status == dg.DagsterRunStatus.FAILURE
    failure = instance.all_logs(run.run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert "WorkerLostError" in failure[-1].message or "WorkerLostError" in str(
        failure[-1].dagster_event.event_specific_data
    )
    assert versions(tracking_uri) == []
    # The worker replaced its pool process; both workers still take steps.
    assert all(worker.process.poll() is None for worker in cluster.workers)

    # The rerun succeeds with every step in a worker's pool process (the killed one replaced),
    # none in this orchestrating process, and registers exactly one version.
    rerun = launch(instance, tracking_uri)
    assert rerun.status == dg.DagsterRunStatus.SUCCESS
    pool = {pid for worker in cluster.workers for pid in worker.pool_pids()}
    hosts = step_hosts(instance, rerun.run_id)
    assert hosts and hosts <= pool and os.getpid() not in hosts
    assert versions(tracking_uri) == ["1"]

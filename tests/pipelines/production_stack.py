"""The production profile's servers for the end-to-end loop, and how the loop drives Dagster.

Everything a deployment runs beside the product, each a real server on this machine: PostgreSQL
(one database each for the conversation store, the MLflow backend and Dagster's instance),
Redis (the Celery broker, and the chat tier's fan-out on another database number), `mlflow
server` on PostgreSQL with proxied artifacts, and two Celery workers of the pipeline. Every
process, this one included, gets the same environment with SUPPORTLOOP_PROFILE=production.
"""

from __future__ import annotations

import os
import shutil
import signal
import threading
import uuid
from collections.abc import Iterator, Mapping
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import dagster as dg
import sqlalchemy as sa
from dagster._core.definitions.reconstruct import ReconstructableRepository
from mlflow import MlflowClient

from pipelines.automation import drift_retraining_sensor
from pipelines.definitions import build_definitions
from tests.celery_workers import Worker, running_redis, running_workers
from tests.conftest import REPO_ROOT
from tests.mlflow_server import MlflowServer, running_mlflow_server
from tests.postgres import PostgresServer
from tests.serving.conftest import CHAT_SECRET

MODEL = "intent-classifier"
TRAINING_STEP = "intent_model"
KILL_WAIT_S = 600
# Variables of the machine's own that would point a process somewhere else than the stack.
FOREIGN_VARIABLES = (
    "MLFLOW_REGISTRY_URI",
    "SERVING_MLFLOW_TRACKING_URI",
    "SERVING_MLFLOW_REGISTRY_URI",
    "SERVING_STORE_URL",
    "MONITORING_STORE_URL",
    "MONITORING_MLFLOW_TRACKING_URI",
)


@dataclass(frozen=True)
class Stack:
    """The running servers and the environment every process of the loop shares."""

    env: dict[str, str]
    root: Path
    mlflow: MlflowServer
    mlflow_backend_url: str
    store_url: str
    workers: list[Worker]

    @property
    def reports_dir(self) -> Path:
        """Where monitoring runs write their reports."""
        return Path(self.env["REPORTS_DIR"])


def base_env(root: Path, banking77_dir: Path) -> dict[str, str]:
    """The environment of every process, without the server URLs (known once they run)."""
    env = {k: v for k, v in os.environ.items() if k not in FOREIGN_VARIABLES}
    return env | {
        "SUPPORTLOOP_PROFILE": "production",
        "DAGSTER_HOME": str(root / "dagster_home"),
        "PIPELINE_EXECUTOR": "celery",
        "BANKING77_DIR": str(banking77_dir),
        "LABELLED_CSV_PATHS": "[]",
        "CONVERSATION_JSONL_DIR": str(root / "incoming"),
        "LAKE_DIR": str(root / "lake"),
        "REPORTS_DIR": str(root / "reports"),
        # The secret the test's chat tokens are signed with, whatever `make test` exported.
        "CHAT_JWT_SECRET": CHAT_SECRET,
    }


@contextmanager
def running_stack(postgres: PostgresServer, root: Path, banking77_dir: Path) -> Iterator[Stack]:
    """PostgreSQL databases, Redis, the MLflow server and two Celery workers; all stopped after."""
    home = root / "dagster_home"
    home.mkdir()
    (root / "incoming").mkdir()
    shutil.copy(REPO_ROOT / "deploy/dagster/dagster.yaml", home / "dagster.yaml")
    suffix = uuid.uuid4().hex[:10]
    store_url = postgres.create_database(f"store_{suffix}")
    backend_url = postgres.create_database(f"mlflow_{suffix}")
    postgres.create_database(f"dagster_{suffix}")
    with ExitStack() as stack:
        broker = stack.enter_context(running_redis(root))
        mlflow = stack.enter_context(running_mlflow_server(root / "mlflow", backend_url))
        env = base_env(root, banking77_dir) | {
            "DAGSTER_PG_URL": postgres.url(f"dagster_{suffix}", driver="psycopg2"),
            "CELERY_BROKER_URL": broker,
            "CHAT_BROKER_URL": broker.removesuffix("/0") + "/1",
            "CONVERSATION_STORE_URL": store_url,
            "MLFLOW_TRACKING_URI": mlflow.uri,
        }
        workers = stack.enter_context(running_workers(2, env, root))
        yield Stack(env, root, mlflow, backend_url, store_url, workers)


def launch(
    instance: dg.DagsterInstance,
    job_name: str,
    run_config: dict[str, Any] | None = None,
    tags: Mapping[str, str] | None = None,
) -> dg.DagsterRun:
    """One run of the code location's job, as the daemon's run worker executes it."""
    repository = ReconstructableRepository.for_module(
        "pipelines.definitions", "defs", working_directory=str(REPO_ROOT)
    )
    job = repository.get_reconstructable_job(job_name)
    with dg.execute_job(
        job, instance, run_config=run_config, tags=tags, raise_on_error=False
    ) as result:
        run = instance.get_run_by_id(result.run_id)
    assert run is not None
    return run


def materialized(instance: dg.DagsterInstance, run_id: str, asset: str) -> dict[str, Any]:
    """The metadata of `asset`'s materialisation in run `run_id`, as plain values."""
    entries = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    for entry in entries:
        materialization = entry.asset_materialization
        if materialization is not None and materialization.asset_key.path == [asset]:
            return {key: value.value for key, value in materialization.metadata.items()}
    raise AssertionError(f"run {run_id} materialised no {asset}")


def versions(tracking_uri: str) -> list[str]:
    """The registered versions of the intent model, asked of the tracking server over HTTP."""
    client = MlflowClient(tracking_uri, tracking_uri)
    found = client.search_model_versions(f"name = '{MODEL}'")
    return sorted(str(version.version) for version in found)


def champion(tracking_uri: str) -> str:
    """The version the `champion` alias names on the tracking server."""
    client = MlflowClient(tracking_uri, tracking_uri)
    return str(client.get_model_version_by_alias(MODEL, "champion").version)


def backend_rows(backend_url: str) -> tuple[list[str], str]:
    """The server's own PostgreSQL: registered versions and the champion alias's version."""
    engine = sa.create_engine(backend_url)
    try:
        with engine.connect() as connection:
            rows = connection.execute(
                sa.text("SELECT version FROM model_versions WHERE name = :name"), {"name": MODEL}
            ).all()
            alias = connection.execute(
                sa.text("SELECT version FROM registered_model_aliases WHERE alias = 'champion'")
            ).scalar_one()
    finally:
        engine.dispose()
    return sorted(str(row.version) for row in rows), str(alias)


def step_hosts(instance: dg.DagsterInstance, run_id: str) -> set[int]:
    """The pids of the processes that started the run's steps."""
    starts = instance.all_logs(run_id, of_type=dg.DagsterEventType.STEP_START)
    events = [entry.dagster_event for entry in starts]
    return {event.pid for event in events if event is not None and event.pid is not None}


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
                if event is not None and event.step_key == TRAINING_STEP and event.pid:
                    os.kill(event.pid, signal.SIGKILL)
                    killed.append(event.pid)
                    return
        pause.wait(0.5)


def launch_with_a_worker_killed(
    instance: dg.DagsterInstance, run_config: dict[str, Any]
) -> tuple[dg.DagsterRun, list[int]]:
    """A training run whose training step's process is SIGKILLed; the run and the killed pid."""
    killed: list[int] = []
    earlier = {run.run_id for run in instance.get_runs()}
    with dg.DagsterInstance.get() as watcher:
        killer = threading.Thread(target=kill_the_training_step, args=(watcher, earlier, killed))
        killer.start()
        try:
            run = launch(instance, "training_job", run_config)
        finally:
            killer.join(timeout=KILL_WAIT_S)
    return run, killed


def run_failure_text(instance: dg.DagsterInstance, run_id: str) -> str:
    """The run's failure event: its message and the data it carries."""
    failure = instance.all_logs(run_id, of_type=dg.DagsterEventType.RUN_FAILURE)
    assert failure, f"run {run_id} has no RUN_FAILURE event"
    event = failure[-1].dagster_event
    return f"{failure[-1].message} {event.event_specific_data if event else ''}"


def drift_retraining_request(instance: dg.DagsterInstance) -> dg.RunRequest:
    """What the daemon's drift sensor asks for after the latest monitoring run (it must ask)."""
    defs = build_definitions()
    assert defs.resources is not None
    names = ("sources", "mlflow_registry", "monitoring")
    resources = {name: defs.resources[name] for name in names}
    with dg.build_sensor_context(
        instance=instance, resources=resources, definitions=defs
    ) as context:
        tick = drift_retraining_sensor.evaluate_tick(context)
    assert tick.run_requests, tick.skip_message
    [request] = tick.run_requests
    assert isinstance(request, dg.RunRequest)
    return request

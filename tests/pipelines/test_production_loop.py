"""The whole loop on the production profile, every part a real server (issue 10's end-to-end test).

SUPPORTLOOP_PROFILE=production in every process: PostgreSQL (conversation store, MLflow backend,
Dagster instance), Redis (Celery broker, chat fan-out), `mlflow server` with proxied artifacts,
two Celery workers executing training_job's steps, and `bentoml serve` with two workers that know
the registry only as MLFLOW_TRACKING_URI=http://… and the store only as CONVERSATION_STORE_URL.

1. A training run loses its worker's pool process (SIGKILL) mid-training: it fails at once,
   naming the lost worker, and registers nothing; the rerun, every step on the workers,
   registers exactly one version, which the gate makes the champion.
2. Two BentoML workers serve it; customers chat over WebSocket, the chat backend posts feedback
   over HTTP; the rows are in PostgreSQL.
3. monitoring_job reads them from the store and finds the champion degraded on the new labels;
   the drift sensor asks for a retraining, whose new training data is that feedback; it passes
   the gate against the champion and is promoted; both serving workers swap to it.

The data is six card intents that Banking77 confuses with one another (40 messages each, the
size of `small_slice`, whose six intents every model gets 100 % right and so cannot improve on),
and 40 further messages each posted as feedback: enough for the retrained model to beat the
champion on the same frozen test split. This module replaces the separate Celery-executor,
tracking-server-on-PostgreSQL and chat-on-PostgreSQL modules: their assertions are steps here.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
import pandas as pd
import pytest
from mlflow import MlflowClient

from models.registry import RegistryConfig
from tests.conftest import write_slice
from tests.pipelines import loop_steps
from tests.pipelines.production_stack import (
    MODEL,
    Stack,
    backend_rows,
    champion,
    drift_retraining_request,
    launch,
    launch_with_a_worker_killed,
    materialized,
    run_failure_text,
    running_stack,
    step_hosts,
    versions,
)
from tests.postgres import PostgresServer
from tests.serving.conftest import ServiceProcess, service_env

pytestmark = pytest.mark.slow
CARD_INTENTS = (
    "card_arrival",
    "card_delivery_estimate",
    "card_not_working",
    "card_payment_not_recognised",
    "compromised_card",
    "lost_or_stolen_card",
)
PER_INTENT = 40
# One candidate: the loop is under test, not the model search. The gate's floor is the one
# data/README.md documents for Banking77 (without one, a first model must beat the run's
# baselines, and on these six intents the baseline's LinearSVC edges out the one candidate).
TRAINING = {
    "ops": {
        "intent_model": {"config": {"candidates": ["tfidf_logreg"]}},
        "model_promotion": {"config": {"accuracy_floor": 0.85}},
    }
}


def _card_messages(banking77_train: pd.DataFrame, start: int) -> pd.DataFrame:
    chosen = banking77_train[banking77_train["category"].isin(CARD_INTENTS)]
    rows = chosen.groupby("category", group_keys=False).nth(list(range(start, start + PER_INTENT)))
    return pd.DataFrame(rows).reset_index(drop=True)


@pytest.fixture(scope="module")
def stack(
    tmp_path_factory: pytest.TempPathFactory,
    postgres_server: PostgresServer,
    banking77_train: pd.DataFrame,
) -> Iterator[Stack]:
    """Every server but BentoML, with the card slice as the curated data set."""
    root = tmp_path_factory.mktemp("production_loop")
    slice_dir = write_slice(_card_messages(banking77_train, 0), root / "banking77")
    with running_stack(postgres_server, root, slice_dir) as running:
        yield running


@pytest.fixture(scope="module")
def instance(stack: Stack) -> Iterator[dg.DagsterInstance]:
    """This process (the runs' orchestrator) in the stack's environment, on Dagster's PostgreSQL."""
    with pytest.MonkeyPatch.context() as patch:
        for name in set(os.environ) - set(stack.env):
            patch.delenv(name)
        for name, value in stack.env.items():
            patch.setenv(name, value)
        with dg.DagsterInstance.get() as shared:
            yield shared


@contextmanager
def serving(stack: Stack) -> Iterator[ServiceProcess]:
    """`bentoml serve` with two workers, told only the server URLs of the stack."""
    root = stack.root / "serving"
    root.mkdir()
    env = service_env({"root": root, "config": RegistryConfig(stack.mlflow.uri)})
    env = {
        k: v
        for k, v in env.items()
        if k not in ("SERVING_MLFLOW_TRACKING_URI", "SERVING_STORE_URL")
    }
    process = ServiceProcess(env | stack.env | {"SERVING_WORKERS": "2"})
    process.start()
    try:
        yield process
    finally:
        process.stop()


def _kill_then_rerun(stack: Stack, instance: dg.DagsterInstance) -> None:
    pool = {pid for worker in stack.workers for pid in worker.pool_pids()}
    run, killed = launch_with_a_worker_killed(instance, TRAINING)
    assert killed, "the training step never started"
    assert killed[0] in pool  # a worker's pool process executed the step
    assert run.status == dg.DagsterRunStatus.FAILURE
    assert "WorkerLostError" in run_failure_text(instance, run.run_id)
    assert versions(stack.mlflow.uri) == []
    # The worker replaced its pool process; both workers still take steps.
    assert all(worker.process.poll() is None for worker in stack.workers)

    rerun = launch(instance, "training_job", TRAINING)
    assert rerun.status == dg.DagsterRunStatus.SUCCESS
    pool = {pid for worker in stack.workers for pid in worker.pool_pids()}
    hosts = step_hosts(instance, rerun.run_id)
    assert hosts and hosts <= pool and os.getpid() not in hosts
    promotion = materialized(instance, rerun.run_id, "model_promotion")
    assert promotion["passed"] is True, promotion["checks"]


def _registered_on_the_server(stack: Stack, expected: list[str], alias: str) -> None:
    """The versions and the champion, over HTTP and in the server's own PostgreSQL."""
    assert versions(stack.mlflow.uri) == expected
    assert champion(stack.mlflow.uri) == alias
    assert backend_rows(stack.mlflow_backend_url) == (expected, alias)
    client = MlflowClient(stack.mlflow.uri, stack.mlflow.uri)
    download = client.get_model_version_download_uri(MODEL, alias)
    assert download.startswith("mlflow-artifacts:/"), download
    assert not list(stack.mlflow.root.glob("*.db"))  # the registry is not a file beside it


def _monitoring_reads_the_store(
    stack: Stack, instance: dg.DagsterInstance, customer_turns: int, labels: int
) -> str:
    # Every labelled message was classified once over /batch_predict before its feedback:
    # monitoring sees those HTTP predictions beside the chat tier's turns.
    assert loop_steps.http_predictions_recorded(stack.store_url, labels) == labels
    run = launch(instance, "monitoring_job")
    assert run.status == dg.DagsterRunStatus.SUCCESS
    report = materialized(instance, run.run_id, "drift_report")
    assert report["current_messages"] == customer_turns + labels
    assert report["model_version"] == "1"
    summary = json.loads((Path(report["report"]).parent / "summary.json").read_text())
    assert summary["performance"]["labels"] == labels, summary["performance"]
    return str(report["verdict"])


def test_the_loop_on_the_production_profile(
    stack: Stack, instance: dg.DagsterInstance, banking77_train: pd.DataFrame
) -> None:
    _kill_then_rerun(stack, instance)
    _registered_on_the_server(stack, ["1"], "1")

    feedback = _card_messages(banking77_train, PER_INTENT)
    with serving(stack) as service:
        assert loop_steps.served_version(service) == "1"
        assert len(loop_steps.worker_processes(service)) == 2
        customer_turns = loop_steps.chat_lands_in_postgres(service, stack.store_url)
        labels = loop_steps.feedback_lands_in_postgres(service, stack.store_url, feedback)

        # On the new labelled messages the champion is far below its test accuracy.
        verdict = _monitoring_reads_the_store(stack, instance, customer_turns, labels)
        assert verdict == "degraded"
        request = drift_retraining_request(instance)
        assert request.tags["new_labels"] == str(labels)

        downloads = loop_steps.artifact_downloads(stack.mlflow)
        swaps = loop_steps.swaps(service)
        retrain = launch(instance, "training_job", TRAINING, request.tags)
        assert retrain.status == dg.DagsterRunStatus.SUCCESS
        promotion = materialized(instance, retrain.run_id, "model_promotion")
        assert promotion["passed"] is True, promotion["checks"]
        _registered_on_the_server(stack, ["1", "2"], "2")
        loop_steps.every_worker_serves(service, "2", swaps)
        loop_steps.predicts_with(service, "2", CARD_INTENTS)
        # The new model came through the server's artifact proxy.
        assert loop_steps.artifact_downloads(stack.mlflow) > downloads

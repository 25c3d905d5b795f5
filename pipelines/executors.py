"""Which Dagster executor runs a job's steps: in the run's own process, or on Celery workers.

The embedded default (`PIPELINE_EXECUTOR=in_process`) needs nothing running. The production
profile sets `PIPELINE_EXECUTOR=celery` and `CELERY_BROKER_URL` (Redis): each step of a run is
then a Celery task, executed by whichever worker (`celery -A pipelines.celery_worker worker`, on
any machine that reaches the broker, the Dagster storage and the MLflow server) takes it.

`make pipeline` is unaffected either way: it executes in its own process (`execute_in_process`).
The executor applies to runs launched by the daemon, the UI or `dagster job launch`.
"""

from __future__ import annotations

import os
from typing import Any

import dagster as dg

from pipelines.settings import ExecutorKind, PipelineSettings

BROKER_VARIABLE = "CELERY_BROKER_URL"
BACKEND_VARIABLE = "CELERY_RESULT_BACKEND"
# The queue dagster-celery routes every step to (dagster_celery/make_app.py); workers listen on it.
CELERY_QUEUE = "dagster"


def _source(value: str, variable: str) -> str | dict[str, str]:
    """`{"env": variable}` when `value` came from that variable, else the value itself.

    Executor config is stored with every run and shown in the Dagster UI: a broker URL with a
    password must appear as the name of its variable, resolved only where the run executes.
    """
    return {"env": variable} if os.environ.get(variable) == value else value


def celery_config(settings: PipelineSettings) -> dict[str, Any]:
    """The `celery_executor` config of these settings (broker; results on the same Redis)."""
    broker = settings.celery_broker_url
    if broker is None:  # PipelineSettings refuses PIPELINE_EXECUTOR=celery without a broker
        raise ValueError(f"{BROKER_VARIABLE} is required with PIPELINE_EXECUTOR=celery")
    backend = settings.celery_result_backend
    return {
        "broker": _source(broker, BROKER_VARIABLE),
        "backend": _source(backend or broker, BACKEND_VARIABLE if backend else BROKER_VARIABLE),
    }


def executor_for(settings: PipelineSettings) -> dg.ExecutorDefinition:
    """The executor PIPELINE_EXECUTOR names, configured from the settings."""
    if settings.pipeline_executor is ExecutorKind.CELERY:
        # Imported only here: the embedded default never loads Celery.
        from dagster_celery import celery_executor

        return celery_executor.configured(celery_config(settings), name="celery")
    return dg.in_process_executor

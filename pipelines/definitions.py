"""Everything Dagster loads: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

import dagster as dg

from pipelines.assets import features, ingestion, monitoring, training
from pipelines.automation import (
    daily_monitoring_schedule,
    drift_retraining_sensor,
    monitoring_job,
    new_conversations_sensor,
    training_job,
    weekly_retraining_schedule,
)
from pipelines.checks import ALL_CHECKS
from pipelines.io_manager import LakeIOManager
from pipelines.resources import ConversationSources, MlflowRegistry, MonitoringResource
from pipelines.settings import PipelineSettings


def build_resources(settings: PipelineSettings) -> dict[str, object]:
    """Resources from settings; the Dagster launchpad can override any field per run."""
    return {
        "io_manager": LakeIOManager(base_dir=str(settings.lake_dir)),
        "sources": ConversationSources(
            banking77_dir=str(settings.banking77_dir) if settings.banking77_dir else None,
            csv_paths=[str(path) for path in settings.labelled_csv_paths],
            jsonl_dir=str(settings.conversation_jsonl_dir),
            store_url=settings.conversation_store_url,
            max_text_chars=settings.max_text_chars,
        ),
        "mlflow_registry": MlflowRegistry(
            tracking_uri=settings.mlflow_tracking_uri,
            registry_uri=settings.mlflow_registry_uri,
            artifact_root=settings.mlflow_artifact_root,
            experiment_name=settings.mlflow_experiment,
            model_name=settings.registered_model_name,
            ui_url=settings.mlflow_ui_url,
        ),
        "monitoring": MonitoringResource(
            store_url=settings.conversation_store_url,
            reports_dir=str(settings.reports_dir),
            lake_dir=str(settings.lake_dir),
            retrain_min_new_labels=settings.retrain_min_new_labels,
        ),
    }


def build_definitions(settings: PipelineSettings | None = None) -> dg.Definitions:
    """The code location's definitions for the given settings (default: from the environment)."""
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, features, training, monitoring]),
        asset_checks=ALL_CHECKS,
        jobs=[training_job, monitoring_job],
        schedules=[weekly_retraining_schedule, daily_monitoring_schedule],
        sensors=[new_conversations_sensor, drift_retraining_sensor],
        resources=build_resources(settings or PipelineSettings()),
        # Assets materialised from the UI outside a job: in-process too (see automation.py).
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded lazily by `dagster dev` / `dagster-webserver` (see pyproject's [tool.dagster])."""
    return build_definitions()

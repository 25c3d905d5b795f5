"""Everything Dagster loads: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

import dagster as dg

from models.settings_errors import load_settings
from monitoring.settings import MonitoringSettings
from pipelines.assets import features, ingestion, monitoring, training
from pipelines.automation import (
    drift_retraining_sensor,
    monitoring_job,
    monitoring_schedule,
    new_conversations_sensor,
    retraining_schedule,
    training_job,
)
from pipelines.checks import ALL_CHECKS
from pipelines.io_manager import LakeIOManager
from pipelines.resources import (
    AlertNotifier,
    ConversationSources,
    MlflowRegistry,
    MonitoringResource,
)
from pipelines.settings import PipelineSettings


def build_resources(
    settings: PipelineSettings, monitoring_settings: MonitoringSettings
) -> dict[str, object]:
    """Resources from settings; the Dagster launchpad can override any field per run.

    The stores, the registry and the retraining threshold are the pipeline's; where reports go
    and the alert targets are monitoring's (MonitoringSettings).
    """
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
            reports_dir=str(monitoring_settings.reports_dir),
            lake_dir=str(settings.lake_dir),
            retrain_min_new_labels=settings.retrain_min_new_labels,
        ),
        "notifier": AlertNotifier.from_settings(monitoring_settings),
    }


def build_definitions(
    settings: PipelineSettings | None = None,
    monitoring_settings: MonitoringSettings | None = None,
) -> dg.Definitions:
    """The code location's definitions for the given settings (default: from the environment).

    Settings from the environment are read through `load_settings`: a bad value is one line
    naming its variable (SettingsProblem), also in the Dagster UI's code-location error.
    """
    settings = settings or load_settings(PipelineSettings)
    monitoring_settings = monitoring_settings or load_settings(MonitoringSettings)
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, features, training, monitoring]),
        asset_checks=ALL_CHECKS,
        jobs=[training_job, monitoring_job],
        # MONITORING_RETRAINING_CRON and MONITORING_MONITORING_CRON, the crons APScheduler reads.
        schedules=[
            retraining_schedule(monitoring_settings.retraining_cron),
            monitoring_schedule(monitoring_settings.monitoring_cron),
        ],
        sensors=[new_conversations_sensor, drift_retraining_sensor],
        resources=build_resources(settings, monitoring_settings),
        # Assets materialised from the UI outside a job: in-process too (see automation.py).
        executor=dg.in_process_executor,
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded lazily by `dagster dev` / `dagster-webserver` (see pyproject's [tool.dagster])."""
    return build_definitions()

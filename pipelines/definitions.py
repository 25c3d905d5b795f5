"""Everything Dagster loads: assets, checks, jobs, schedules, sensors and resources."""

from __future__ import annotations

import os
from typing import overload

import dagster as dg
import sqlalchemy as sa

from models.candidate_profile import ProfileSettings
from models.fallback_objective import FallbackSettings
from models.out_of_scope import OutOfScopeSettings
from models.retraining import RetrainPolicy
from models.search import SearchSettings
from models.selection import SelectionBudget
from models.settings_errors import load_settings
from models.shared_settings import REGISTRY_URI, STORE_URL, TRACKING_URI
from monitoring.settings import MonitoringSettings
from pipelines.assets import features, ingestion, monitoring, promotion, training
from pipelines.automation import (
    drift_retraining_sensor,
    monitoring_job,
    monitoring_schedule,
    new_conversations_sensor,
    retraining_schedule,
    training_job,
)
from pipelines.checks import ALL_CHECKS
from pipelines.executors import executor_for
from pipelines.io_manager import LakeIOManager
from pipelines.resources import (
    AlertNotifier,
    ConversationSources,
    MlflowRegistry,
    MonitoringResource,
)
from pipelines.settings import PipelineSettings
from pipelines.shadow_sensor import held_challenger_sensor, shadow_rejudge_job


@overload
def secret_safe(value: str, variable: str) -> str: ...
@overload
def secret_safe(value: str | None, variable: str) -> str | None: ...
def secret_safe(value: str | None, variable: str) -> str | None:
    """`value`, or `EnvVar(variable)` when it holds a password and was read from `variable`.

    Dagster shows every resource's config on its resource page: an EnvVar shows as the
    variable's name, resolved only when a run starts, so a database password never appears.
    """
    if not value or os.environ.get(variable) != value:
        return value
    try:
        password = sa.make_url(value).password
    except sa.exc.ArgumentError:  # not a URL (a path, a plain name): nothing to hide
        return value
    return dg.EnvVar(variable) if password else value


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
            store_url=secret_safe(settings.conversation_store_url, STORE_URL.name),
            max_text_chars=settings.max_text_chars,
            lake_dir=str(settings.lake_dir),
            new_data_min_messages=settings.new_data_min_messages,
        ),
        "mlflow_registry": MlflowRegistry(
            tracking_uri=secret_safe(settings.mlflow_tracking_uri, TRACKING_URI.name),
            registry_uri=secret_safe(settings.mlflow_registry_uri, REGISTRY_URI.name),
            artifact_root=settings.mlflow_artifact_root,
            experiment_name=settings.mlflow_experiment,
            model_name=settings.registered_model_name,
            ui_url=settings.mlflow_ui_url,
        ),
        "monitoring": MonitoringResource(
            store_url=secret_safe(settings.conversation_store_url, STORE_URL.name),
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
    # The training step reads these again; checked here so a bad value stops the code location
    # (and `make pipeline`) at start, naming its variable, instead of failing mid-run.
    load_settings(RetrainPolicy)
    load_settings(SelectionBudget)
    load_settings(OutOfScopeSettings)
    load_settings(FallbackSettings)
    load_settings(ProfileSettings)
    load_settings(SearchSettings)
    return dg.Definitions(
        assets=dg.load_assets_from_modules([ingestion, features, training, promotion, monitoring]),
        asset_checks=ALL_CHECKS,
        jobs=[training_job, monitoring_job, shadow_rejudge_job],
        # MONITORING_RETRAINING_CRON and MONITORING_MONITORING_CRON, the crons APScheduler reads.
        schedules=[
            retraining_schedule(monitoring_settings.retraining_cron),
            monitoring_schedule(monitoring_settings.monitoring_cron),
        ],
        sensors=[new_conversations_sensor, drift_retraining_sensor, held_challenger_sensor],
        resources=build_resources(settings, monitoring_settings),
        # training_job's and the UI's asset materialisations: in-process unless
        # PIPELINE_EXECUTOR=celery (pipelines/executors.py; see automation.py).
        executor=executor_for(settings),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """Loaded lazily by `dagster dev` / `dagster-webserver` (see pyproject's [tool.dagster])."""
    return build_definitions()

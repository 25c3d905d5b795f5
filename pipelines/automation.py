"""Jobs, schedules (weekly retraining, daily monitoring) and sensors (new data, drift)."""

from datetime import datetime

import dagster as dg

from monitoring.data import count_labels_since
from monitoring.settings import MonitoringSettings
from pipelines.conversation_log import plan_ingestion
from pipelines.new_data import NewDataState, decide
from pipelines.resources import ConversationSources, MlflowRegistry, MonitoringResource
from pipelines.retraining import RETRAIN_TAG

# The run coordinator's concurrency limits count runs by this tag (deploy/dagster/dagster.yaml).
RUN_KIND_TAG = "supportloop/run-kind"

# Both jobs run every step in the run's own process by default. Dagster's default, the
# multiprocess executor, starts a fresh interpreter per step, and each one imports this code
# location again (Dagster, pandas, scikit-learn, MLflow: ~15 s of CPU here) to do a few seconds
# of work; training_job has ten steps and one pair that could overlap, on a 2-core host. A
# 400-message run launched the UI way (bench/imports.py, bench/README.md): in-process 34 s; spawn
# 144 s (~14 s per step start); forkserver with the heavy modules preloaded 68 s (an 18 s server
# start, then ~2.7 s a step). Celery workers import once and keep the modules (README).
#
# `message_features` (spaCy over every example) feeds no model: the candidates compute their own
# features inside their scikit-learn pipelines. It stays an asset to materialise on demand (the
# analysis table), outside the training job. The job's runs name a range of the conversation
# log's days (`ingestion_tags`): the days whose sources changed, else today's.
training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.groups("ingestion", "features", "training")
    - dg.AssetSelection.assets("message_features"),
    description="Ingest new days, validate, build examples, train, register and gate the model.",
    # No executor of its own: the definitions' (PIPELINE_EXECUTOR, pipelines/executors.py), so
    # in-process by default and step by step on Celery workers in the production profile.
    tags={RUN_KIND_TAG: "training"},
)
# One step: a second process would only import everything a second time.
monitoring_job = dg.define_asset_job(
    "monitoring_job",
    selection=dg.AssetSelection.groups("monitoring"),
    description="Drift report of the last 24 hours against the champion's reference.",
    executor_def=dg.in_process_executor,
    tags={RUN_KIND_TAG: "monitoring"},
)
DRIFT_VERDICTS = ("drift", "degraded")
_DEFAULT_CRONS = MonitoringSettings.model_fields


def retraining_schedule(cron: str) -> dg.ScheduleDefinition:
    """`training_job` on `cron` (UTC): MONITORING_RETRAINING_CRON, which APScheduler reads too."""

    @dg.schedule(
        name="weekly_retraining",
        job=training_job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )
    def weekly_retraining(sources: ConversationSources) -> dg.RunRequest:
        """A training run over the days of the log that changed since they were read."""
        return dg.RunRequest(tags=ingestion_tags(sources))

    return weekly_retraining


def ingestion_tags(sources: ConversationSources) -> dict[str, str]:
    """Tags of a training run: the range of the conversation log's days it reads."""
    return plan_ingestion(sources.log_sources()).tags()


def monitoring_schedule(cron: str) -> dg.ScheduleDefinition:
    """`monitoring_job` on `cron` (UTC): MONITORING_MONITORING_CRON, which APScheduler reads too."""
    return dg.ScheduleDefinition(
        name="daily_monitoring",
        job=monitoring_job,
        cron_schedule=cron,
        execution_timezone="UTC",
        default_status=dg.DefaultScheduleStatus.RUNNING,
    )


# On the settings' default crons (the definitions build them from the environment's).
weekly_retraining_schedule = retraining_schedule(_DEFAULT_CRONS["retraining_cron"].default)
daily_monitoring_schedule = monitoring_schedule(_DEFAULT_CRONS["monitoring_cron"].default)


@dg.sensor(
    job=training_job, minimum_interval_seconds=120, default_status=dg.DefaultSensorStatus.RUNNING
)
def new_conversations_sensor(
    context: dg.SensorEvaluationContext, sources: ConversationSources
) -> dg.SensorResult | dg.SkipReason:
    """Start a training run on new labels, changed source files or enough new messages.

    Not on every chat message: unlabelled messages count up to NEW_DATA_MIN_MESSAGES first
    (pipelines/new_data.py).
    """
    state = sources.new_data_state()
    previous = NewDataState.from_cursor(context.cursor)
    if previous is None:
        # First evaluation (or an older sensor's cursor): remember the current state; the
        # schedule or a person trains on it.
        return dg.SensorResult(cursor=state.to_cursor(), skip_reason="baseline recorded")
    decision = decide(previous, state, sources.new_data_min_messages)
    if not decision.run and decision.cursor == previous:
        return dg.SkipReason(decision.reason)
    if not decision.run:  # counts shrank: measure growth from the new base
        return dg.SensorResult(cursor=decision.cursor.to_cursor(), skip_reason=decision.reason)
    request = dg.RunRequest(
        run_key=f"sources-{state.key}",
        tags={**ingestion_tags(sources), "trigger": f"new data: {decision.reason}"},
    )
    return dg.SensorResult(run_requests=[request], cursor=state.to_cursor())


@dg.asset_sensor(
    asset_key=dg.AssetKey("drift_report"),
    job=training_job,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def drift_retraining_sensor(
    context: dg.SensorEvaluationContext,
    asset_event: dg.EventLogEntry,
    sources: ConversationSources,
    mlflow_registry: MlflowRegistry,
    monitoring: MonitoringResource,
) -> dg.RunRequest | dg.SkipReason:
    """Retrain when monitoring says `drift` or `degraded` and enough new labels exist."""
    materialization = asset_event.asset_materialization
    verdict = materialization.metadata["verdict"].value if materialization else None
    if verdict == "insufficient_data":
        # A quiet window proves nothing: its 50 % fallback on 4 messages is no reason to retrain.
        return dg.SkipReason("latest window had too little traffic to judge: no retraining")
    if verdict not in DRIFT_VERDICTS:
        return dg.SkipReason(f"latest verdict is {verdict!r}: no retraining needed")
    registry = mlflow_registry.registry()
    champion = registry.version_by_alias("champion")
    trained_at = registry.describe(champion).trained_at if champion else None
    since = datetime.fromisoformat(trained_at) if trained_at else None
    minimum = monitoring.retrain_min_new_labels
    labels = count_labels_since(sources.store_url, since) if sources.store_url else 0
    if labels < minimum:
        return dg.SkipReason(
            f"verdict {verdict} but only {labels} new labels since the champion was trained "
            f"(need {minimum})"
        )
    return dg.RunRequest(
        run_key=f"drift-{asset_event.run_id}",
        tags={
            "trigger": f"monitoring verdict {verdict}",
            "new_labels": str(labels),
            # The drift asked for it: retrain however few examples changed (models/retraining.py).
            RETRAIN_TAG: f"monitoring verdict {verdict}, {labels} new labels",
            **ingestion_tags(sources),
        },
    )

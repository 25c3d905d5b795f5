"""Jobs, the weekly retraining schedule and the new-data sensor."""

import dagster as dg

from pipelines.resources import ConversationSources

training_job = dg.define_asset_job(
    "training_job",
    selection=dg.AssetSelection.all(),
    description="Ingest, validate, build features, train, register and gate the intent model.",
)

weekly_retraining_schedule = dg.ScheduleDefinition(
    name="weekly_retraining",
    job=training_job,
    cron_schedule="0 3 * * 1",
    execution_timezone="UTC",
    default_status=dg.DefaultScheduleStatus.RUNNING,
)


@dg.sensor(
    job=training_job, minimum_interval_seconds=120, default_status=dg.DefaultSensorStatus.RUNNING
)
def new_conversations_sensor(
    context: dg.SensorEvaluationContext, sources: ConversationSources
) -> dg.SensorResult | dg.SkipReason:
    """Start a training run when a source file changes or the store gains messages or labels."""
    fingerprint = sources.fingerprint()
    if context.cursor == fingerprint:
        return dg.SkipReason("no new conversation files or labelled rows")
    if context.cursor is None:
        # First evaluation: remember the current state; the schedule or a person trains on it.
        return dg.SensorResult(cursor=fingerprint, skip_reason="baseline recorded")
    return dg.SensorResult(
        run_requests=[dg.RunRequest(run_key=f"sources-{fingerprint}")], cursor=fingerprint
    )

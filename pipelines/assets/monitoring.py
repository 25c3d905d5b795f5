"""Monitoring asset: the drift report of the current window against the champion's reference."""

import dagster as dg

from pipelines.resources import MlflowRegistry, MonitoringResource

GROUP = "monitoring"


class MonitoringConfig(dg.Config):
    """The window to watch; unset: MONITORING_WINDOW_* (by default the last 24 hours)."""

    window_hours: float | None = None
    window_start: str | None = None
    window_end: str | None = None


@dg.asset(
    group_name=GROUP,
    kinds={"evidently", "mlflow"},
    # Lineage: the report watches the champion (set by model_promotion, trained by intent_model)
    # on the newest conversations of the log (the chat store's recent days).
    deps=[
        "intent_model",
        "model_promotion",
        dg.AssetDep("conversation_log", partition_mapping=dg.LastPartitionMapping()),
    ],
)
def drift_report(
    context: dg.AssetExecutionContext,
    config: MonitoringConfig,
    monitoring: MonitoringResource,
    mlflow_registry: MlflowRegistry,
) -> dg.MaterializeResult:
    """Compare recent conversations with the champion's training data; verdict and HTML report."""
    # Imported here: the monitoring stack is not needed by the training job's runs.
    from monitoring.job import MonitoringError, run_monitoring

    try:
        result = run_monitoring(
            monitoring.settings(
                mlflow_registry, config.window_hours, config.window_start, config.window_end
            )
        )
    except MonitoringError as exc:
        raise dg.Failure(description=str(exc)) from exc
    summary = result.summary
    context.log.info("verdict %s: %s", result.verdict.value, list(summary.reasons))
    metadata = {
        "verdict": result.verdict.value,
        "reasons": dg.MetadataValue.md("\n".join(f"- {r}" for r in summary.reasons) or "-"),
        "drifted_columns": ", ".join(summary.drifted_columns) or "none",
        "current_messages": summary.current_messages,
        "model_version": summary.model_version,
        "intent_js_distance": summary.predictions.intent_js_distance,
        "fallback_rate": summary.predictions.fallback_rate.current,
        # A web link when MONITORING_REPORTS_URL publishes the reports, else the path or URL.
        "report": (
            dg.MetadataValue.url(result.report_link)
            if result.report_link.startswith(("http://", "https://"))
            else dg.MetadataValue.path(result.report_link)
        ),
        "reports_index": dg.MetadataValue.path(str(result.index_path)),
        "kpis": dg.MetadataValue.json(summary.kpis.to_dict()),
    }
    calibration = summary.calibration
    if calibration is not None:
        # The champion's calibration error on the window's labels against training time.
        metadata["calibration"] = dg.MetadataValue.json(calibration.to_dict())
    if result.mlflow_run_id:
        metadata["mlflow_run_id"] = result.mlflow_run_id
    return dg.MaterializeResult(value=result.to_document(), metadata=metadata)

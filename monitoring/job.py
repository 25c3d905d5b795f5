"""A monitoring run: reference vs current window → Evidently report, summary, verdict, alerts.

`python -m monitoring.job` runs one outside Dagster; the Dagster asset `drift_report` calls
`run_monitoring` too, in `monitoring_job` runs started by the daemon or by pipelines/scheduler.py.
"""

from __future__ import annotations

import json
import logging
import sys
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd
from upath import UPath

from models.location import local_folder, public_link, read_parquet, refreshed
from models.registry import IntentRegistry, RegistryConfig
from models.settings_errors import SettingsProblem, load_settings
from models.shadow_sample import challenger_shadow
from models.tracking import mlflow_uris
from monitoring.alerts import Alert, notify
from monitoring.calibration_watch import measure_calibration
from monitoring.data import read_current
from monitoring.metrics import SupportKpis, Verdict
from monitoring.new_intents_run import queue_new_intents
from monitoring.pages import index_page, summary_page
from monitoring.settings import MonitoringSettings
from monitoring.summary import MonitoringSummary, build_summary, labels_with_predictions
from monitoring.window import resolve_window

logger = logging.getLogger("monitoring")


class MonitoringError(RuntimeError):
    """A run that cannot start (no champion, no reference); the message says what to do."""


@dataclass(frozen=True)
class MonitoringResult:
    """Where a run's outputs are and what it concluded."""

    summary: MonitoringSummary
    # Under REPORTS_DIR: a local folder or an object-store URL (models/location.py).
    run_dir: UPath
    summary_path: UPath
    report_path: UPath
    index_path: UPath
    mlflow_run_id: str | None
    # What people follow to the run's page: MONITORING_REPORTS_URL's, else the path or URL.
    report_link: str = ""

    @property
    def verdict(self) -> Verdict:
        """ok | drift | degraded."""
        return self.summary.verdict

    def to_document(self) -> dict[str, object]:
        """The final summary.json: the summary and the MLflow run it was logged to."""
        return self.summary.to_document() | {"mlflow_run_id": self.mlflow_run_id}


def reference_predictions(registry: IntentRegistry, version: str, lake_dir: UPath) -> pd.DataFrame:
    """The champion's held-out test split with the champion's own predictions on it.

    The test split, not the training rows: on messages it was fitted to, a model is more
    confident and falls back less than it ever will on traffic, and every comparison would
    then read as drift. The split is a stratified hash sample of the same data.
    """
    reference = registry.load_reference(version)
    if reference is None:
        examples = lake_dir / "training_examples.parquet"
        if not examples.exists():
            raise MonitoringError(
                f"model version {version} has no reference snapshot and {examples} is missing: "
                "run `make pipeline` to train a version that stores one"
            )
        reference = read_parquet(examples)
    reference = reference[reference["split"] == "test"][["text", "intent"]]
    # The version itself, not whatever the alias points to by now: one run, one version.
    inference = registry.load_inference(version)
    predictions = inference.predict(reference["text"].astype(str).tolist(), None, top_k=1)
    return reference.assign(
        predicted_intent=[p.intent for p in predictions],
        confidence=[p.confidence for p in predictions],
        fallback=[p.fallback for p in predictions],
    ).reset_index(drop=True)


def _previous_kpis(reports_dir: UPath, run_id: str) -> SupportKpis | None:
    runs = sorted(p.parent.name for p in refreshed(reports_dir).glob("*/summary.json"))
    earlier = [name for name in runs if name < run_id]
    if not earlier:
        return None
    document = json.loads((reports_dir / earlier[-1] / "summary.json").read_text())
    return SupportKpis.from_dict(document["kpis"])


def run_monitoring(
    settings: MonitoringSettings, now: datetime | None = None, log_to_mlflow: bool = True
) -> MonitoringResult:
    """One monitoring run over the configured window."""
    window = resolve_window(
        settings.window_hours, settings.window_start, settings.window_end, now=now
    )
    registry_uri = settings.mlflow_registry_uri or settings.mlflow_tracking_uri
    registry = IntentRegistry(
        RegistryConfig(settings.mlflow_tracking_uri, registry_uri, settings.model_name)
    )
    champion = registry.version_by_alias("champion")
    if champion is None:
        raise MonitoringError("no champion in the registry: run `make pipeline` first")
    version = str(champion.version)
    reference_accuracy = registry.describe(champion).metrics.get("test_accuracy")
    reference = reference_predictions(registry, version, settings.lake_dir)
    current = read_current(settings.store_url, window)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%fZ")
    run_dir = settings.reports_dir / stamp
    run_dir.mkdir(parents=True, exist_ok=True)
    summary, report_path = build_summary(
        settings, window, version, reference_accuracy, reference, current, run_dir
    )
    # The latest promotion decision, so the report says whether the serving model earned it.
    history = registry.gate_history()
    calibration = measure_calibration(
        registry, version, labels_with_predictions(current), settings.min_labels, run_dir
    )
    summary = replace(
        summary, latest_gate_decision=history[0] if history else None, calibration=calibration
    )
    previous = _previous_kpis(settings.reports_dir, run_dir.name)
    # The champion's intents: an agent naming a cluster picks one of these or a new one.
    known = sorted({*reference["intent"].astype(str), *reference["predicted_intent"].astype(str)})
    new_intents = queue_new_intents(settings, window, version, known, run_dir)
    summary_path = run_dir / "summary.json"
    summary_path.write_text(json.dumps(summary.to_document(), indent=2, default=str))
    # A challenger tried on live traffic beside the champion (serving/shadow.py), if any.
    shadow = challenger_shadow(registry, settings.store_url, version)
    page = summary_page(summary, previous, new_intents, shadow)
    (run_dir / "index.html").write_text(page, encoding="utf-8")
    _record_trend(settings, summary, run_dir)
    index_path = settings.reports_dir / "index.html"
    index_path.write_text(index_page(settings.reports_dir), encoding="utf-8")
    run_id = _log_to_mlflow(settings, registry_uri, summary, run_dir) if log_to_mlflow else None
    link = public_link(run_dir / "index.html", settings.reports_dir, settings.reports_url)
    result = MonitoringResult(
        summary, run_dir, summary_path, report_path, index_path, run_id, report_link=link
    )
    summary_path.write_text(json.dumps(result.to_document(), indent=2, default=str))
    logger.info("monitoring %s: %s (%s)", run_dir.name, summary.verdict, list(summary.reasons))
    if summary.verdict != Verdict.OK:
        notify(settings, _alert(summary, link))
    return result


def _alert(summary: MonitoringSummary, link: str) -> Alert:
    """What the notifiers send: a window too quiet to judge says so, not `drift`."""
    version = summary.model_version
    title = f"Intent model {summary.verdict}: version {version}"
    if summary.verdict == Verdict.INSUFFICIENT_DATA:
        title = (
            f"Intent model not judged: too little traffic ({summary.current_messages} "
            f"messages) for version {version}"
        )
    return Alert(
        kind=summary.verdict.value,
        title=title,
        lines=list(summary.reasons),
        link=link,
    )


def _record_trend(settings: MonitoringSettings, summary: MonitoringSummary, run_dir: UPath) -> None:
    """The run's Evidently snapshot into the workspace; a failure there never fails the run."""
    from monitoring.trends import record_run, workspace_dir

    folder = workspace_dir(settings)
    if folder is None:
        logger.info("no local Evidently workspace for %s: trends not recorded", run_dir)
        return
    try:
        record_run(folder, summary, run_dir)
    except Exception:
        logger.exception("could not add run %s to the Evidently workspace %s", run_dir, folder)


def artifact_root_for(tracking_uri: str) -> str | None:
    """Artifacts beside a SQLite tracking database; a tracking server decides for itself.

    Without this MLflow puts a new experiment's artifacts in ./mlruns of whatever directory
    the process runs in.
    """
    prefix = "sqlite:///"
    if tracking_uri.startswith(prefix):
        return str(Path(tracking_uri[len(prefix) :]).resolve().parent / "artifacts")
    return None


def _log_to_mlflow(
    settings: MonitoringSettings, registry_uri: str, summary: MonitoringSummary, run_dir: UPath
) -> str:
    import mlflow

    from models.tracking import ensure_experiment

    predictions, performance = summary.predictions, summary.performance
    metrics = {
        "current_messages": summary.current_messages,
        "intent_js_distance": predictions.intent_js_distance,
        "intent_psi": predictions.intent_psi,
        "drifted_columns": len(summary.drifted_columns),
        **{
            f"kpi_{key}": value
            for key, value in summary.kpis.to_dict().items()
            if isinstance(value, int | float)
        },
    }
    for name, rate in (
        ("fallback_rate", predictions.fallback_rate),
        ("mean_confidence", predictions.mean_confidence),
    ):
        if rate.current is not None:
            metrics[f"current_{name}"] = rate.current
    if performance.judged and performance.accuracy is not None:
        metrics["label_accuracy"] = performance.accuracy
    if performance.judged and performance.macro_f1 is not None:
        metrics["label_macro_f1"] = performance.macro_f1
    if summary.calibration and summary.calibration.ece is not None:
        metrics["label_ece"] = summary.calibration.ece
    with mlflow_uris(settings.mlflow_tracking_uri, registry_uri):
        experiment_id = ensure_experiment(
            settings.experiment, artifact_root_for(settings.mlflow_tracking_uri)
        )
        with mlflow.start_run(experiment_id=experiment_id, run_name=summary.run_id) as run:
            mlflow.set_tags(
                {"verdict": summary.verdict.value, "model_version": summary.model_version}
            )
            mlflow.log_metrics(metrics)
            # MLflow uploads from a local folder: a copy when the reports are in an object store.
            with local_folder(run_dir) as folder:
                mlflow.log_artifacts(str(folder), "report")
            return run.info.run_id


def main() -> None:
    """Run once with the environment's settings and print where the report is."""
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(MonitoringSettings)
    except SettingsProblem as problem:  # one line naming the variable, no traceback
        print(f"error: {problem}", file=sys.stderr)
        raise SystemExit(2) from None
    try:
        result = run_monitoring(settings)
    except MonitoringError as exc:
        raise SystemExit(f"monitoring: {exc}") from exc
    print(
        json.dumps(
            {
                "verdict": result.verdict,
                "reasons": list(result.summary.reasons),
                "report": str(result.run_dir / "index.html"),
                "index": str(result.index_path),
            },
            indent=2,
        )
    )


if __name__ == "__main__":
    main()

"""A monitoring run's summary: every figure of the run, built from the reference and the
current window, as the pages, MLflow and Dagster read it; `to_document()` is summary.json."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import TYPE_CHECKING

import pandas as pd
from upath import UPath

from monitoring.data import CurrentData
from monitoring.drift_report import ColumnDrift, DriftReport, run_drift_report
from monitoring.metrics import (
    LabelPerformance,
    PredictionDrift,
    SupportKpis,
    Verdict,
    label_performance,
    prediction_drift,
    support_kpis,
)
from monitoring.settings import MonitoringSettings
from monitoring.verdict import DriftRules, verdict
from monitoring.window import Window

if TYPE_CHECKING:
    from models.registry_records import GateRecord
    from monitoring.calibration_watch import CalibrationOverTime

SEED = 0


@dataclass(frozen=True)
class Sampling:
    """How many messages each side had and how many the Evidently part used."""

    reference_rows: int
    reference_total: int
    current_rows: int
    current_total: int
    note: str

    def to_dict(self) -> dict[str, object]:
        """As summary.json holds it."""
        return asdict(self)


@dataclass(frozen=True)
class MonitoringSummary:
    """Every figure of one run: verdict, drift, performance, KPIs, the latest gate decision."""

    run_id: str
    verdict: Verdict
    reasons: tuple[str, ...]
    window: Window
    model_version: str
    reference_accuracy: float | None
    current_messages: int
    drifted_columns: tuple[str, ...]
    columns: tuple[ColumnDrift, ...]
    descriptor_means: dict[str, dict[str, float]]
    predictions: PredictionDrift
    performance: LabelPerformance
    kpis: SupportKpis
    sampling: Sampling
    latest_gate_decision: GateRecord | None = None
    # The champion's ECE on the window's labels against training time (calibration_watch.py).
    calibration: CalibrationOverTime | None = None
    # The thresholds the verdict applied: the page states them as its one drift rule.
    rules: DriftRules = field(default_factory=DriftRules)

    def to_document(self) -> dict[str, object]:
        """summary.json (before the MLflow run id is known)."""
        decision = self.latest_gate_decision
        return {
            "run_id": self.run_id,
            "verdict": self.verdict.value,
            "reasons": list(self.reasons),
            "window": self.window.to_dict(),
            "window_label": self.window.label(),
            "model_version": self.model_version,
            "reference_accuracy": self.reference_accuracy,
            "current_messages": self.current_messages,
            "drifted_columns": list(self.drifted_columns),
            "columns": [vars(column) for column in self.columns],
            "descriptor_means": self.descriptor_means,
            "predictions": self.predictions.to_dict(),
            "performance": self.performance.to_dict(),
            "kpis": self.kpis.to_dict(),
            "sampling": self.sampling.to_dict(),
            "latest_gate_decision": decision.to_dict() if decision else None,
            "rules": asdict(self.rules),
            "calibration": self.calibration.to_dict() if self.calibration else None,
        }


def _sample(frame: pd.DataFrame, size: int) -> pd.DataFrame:
    return frame.sample(size, random_state=SEED) if len(frame) > size else frame


def build_summary(
    settings: MonitoringSettings,
    window: Window,
    version: str,
    reference_accuracy: float | None,
    reference: pd.DataFrame,
    current: CurrentData,
    run_dir: UPath,
) -> tuple[MonitoringSummary, UPath]:
    """Every figure of the run, and the Evidently HTML written beside it."""
    reference_sample = _sample(reference, settings.sample_size)
    # Text drift needs the words: HTTP predictions recorded as a hash only are left out of it.
    current_sample = _sample(
        current.messages[current.messages["text"].notna()], settings.sample_size
    )
    report_path = run_dir / "evidently.html"
    drift = _drift_report(settings, reference_sample, current_sample, report_path)
    predictions = prediction_drift(reference, current.messages)
    performance = label_performance(labels_with_predictions(current), settings.min_labels)
    rules = DriftRules(
        settings.intent_js_threshold,
        settings.fallback_rate_increase,
        settings.confidence_drop,
        settings.max_accuracy_drop,
        settings.min_messages,
    )
    outcome, reasons = verdict(
        rules,
        len(current.messages),
        [column for column in drift.columns if column.drifted] if drift else [],
        predictions,
        performance,
        reference_accuracy,
        drift.descriptor_means if drift else None,
    )
    summary = MonitoringSummary(
        run_id=run_dir.name,
        verdict=outcome,
        reasons=tuple(reasons),
        window=window,
        model_version=version,
        reference_accuracy=reference_accuracy,
        current_messages=len(current.messages),
        drifted_columns=tuple(drift.drifted) if drift else (),
        columns=tuple(drift.columns) if drift else (),
        descriptor_means=drift.descriptor_means if drift else {},
        predictions=predictions,
        performance=performance,
        kpis=support_kpis(current.requests, current.messages, window.days),
        rules=rules,
        sampling=_sampling(
            settings.sample_size,
            (len(reference_sample), len(reference)),
            (len(current_sample), len(current.messages)),
        ),
    )
    return summary, report_path


def _drift_report(
    settings: MonitoringSettings,
    reference_sample: pd.DataFrame,
    current_sample: pd.DataFrame,
    report_path: UPath,
) -> DriftReport | None:
    """The Evidently drift report of the samples, its HTML at `report_path`; None (and a page
    saying why) when the window has too few messages."""
    if len(current_sample) < settings.min_messages:
        report_path.write_text("<p>Too few messages in the window for a drift report.</p>")
        return None
    return run_drift_report(
        reference_sample,
        current_sample,
        settings.text_drift_threshold,
        report_path,
        settings.column_distance_threshold,
    )


def _sampling(sample_size: int, reference: tuple[int, int], current: tuple[int, int]) -> Sampling:
    """How each side was sampled: (rows used, rows in all) of the reference and the current."""
    sampled = reference[0] < reference[1] or current[0] < current[1]
    return Sampling(
        reference_rows=reference[0],
        reference_total=reference[1],
        current_rows=current[0],
        current_total=current[1],
        note=(
            f"Large sides were sampled uniformly at random (seed {SEED}) to "
            f"{sample_size:,} messages to keep the HTML small; intent shares, "
            "rates and KPIs use every message."
            if sampled
            else "Every message was used."
        ),
    )


def labels_with_predictions(current: CurrentData) -> pd.DataFrame:
    """The window's labels, each with the intent (and confidence) the bot answered with."""
    labels = current.labels
    if labels.empty:
        return pd.DataFrame(columns=["intent", "predicted_intent", "label_source"])
    served = current.messages.set_index("message_id")["predicted_intent"]
    missing = labels["predicted_intent"].isna() & labels["message_id"].isin(served.index)
    labels = labels.copy()
    labels.loc[missing, "predicted_intent"] = labels.loc[missing, "message_id"].map(served)
    return labels

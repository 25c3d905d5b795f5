"""The summary `make pipeline` / `make monitor` print at the end of a headless run.

A table of what each asset of the job produced (assets outside the job are not listed), the
asset checks, and, when the run failed, its cause in one last line (`cause: step: Error: …`)
instead of the stack traces Dagster keeps in its event log (`make ui` → Runs).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

import dagster as dg

from pipelines.progress import error_cause

# The metadata worth a glance, per asset, in table order.
SHOWN_METADATA: dict[str, tuple[str, ...]] = {
    "conversation_log": ("days_read", "rows_in", "rows_kept", "rows_quarantined"),
    "raw_conversations": ("row_count",),
    "conversations": ("rows_in", "rows_kept", "rows_quarantined", "rows_added", "rows_removed"),
    "quarantined_messages": ("row_count",),
    "training_examples": ("row_count", "n_intents", "splits"),
    "message_features": ("row_count", "messages_per_second"),
    "intent_model": (
        "version",
        "reused",
        "candidate",
        "test_accuracy",
        "macro_f1",
        "fallback_threshold",
    ),
    "model_promotion": ("decided", "passed", "champion"),
    "drift_report": ("verdict", "drifted_columns", "current_messages", "report"),
}
NOT_MATERIALISED = "not materialised"
SKIPPED = "skipped"  # nothing upstream of the step changed (pipelines/example_inputs.py)
# One asset's materialisation metadata as plain values: whatever each asset records (counts,
# scores, text, JSON, paths), Dagster's open-ended mapping, shown and compared, not shaped here.
AssetMetadata = dict[str, Any]


@dataclass(frozen=True)
class StepFailure:
    """A step that failed and what it raised, in one line."""

    step: str
    cause: str


@dataclass(frozen=True)
class CheckOutcome:
    """One asset check evaluation."""

    name: str
    passed: bool
    severity: str


@dataclass(frozen=True)
class RunSummary:
    """What a finished (or failed) job run did, as the summary shows it."""

    run_id: str
    success: bool
    elapsed_s: float
    job_assets: tuple[str, ...]
    metadata: dict[str, AssetMetadata]
    checks: tuple[CheckOutcome, ...]
    failures: tuple[StepFailure, ...]
    # Assets whose step produced nothing on purpose, with the reason it recorded (if any).
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def cause(self) -> str | None:
        """The one-line cause of a failed run (the first failing step), None if it succeeded."""
        if self.success:
            return None
        if not self.failures:
            return "the run failed before any step ran (its log: make ui → Runs)"
        first = self.failures[0]
        return f"{first.step}: {first.cause}"


def materialization_metadata(result: dg.ExecuteInProcessResult) -> dict[str, AssetMetadata]:
    """Plain metadata values of every asset a job run materialised, keyed by asset."""
    return {
        event.asset_key.to_user_string(): {
            key: getattr(value, "value", value)
            for key, value in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
        if event.asset_key is not None
    }


def skipped_steps(result: dg.ExecuteInProcessResult) -> dict[str, str]:
    """Assets a run skipped on purpose: an observation saying why, or a skipped step."""
    skipped: dict[str, str] = {}
    for event in result.all_events:
        if event.event_type == dg.DagsterEventType.STEP_SKIPPED and event.step_key:
            skipped.setdefault(event.step_key, SKIPPED)
        elif event.event_type == dg.DagsterEventType.ASSET_OBSERVATION:
            observation = event.asset_observation_data.asset_observation
            metadata = observation.metadata
            if "skipped" in metadata and "reason" in metadata:
                reason = getattr(metadata["reason"], "value", metadata["reason"])
                skipped[observation.asset_key.to_user_string()] = f"{SKIPPED}: {reason}"
    return skipped


def summarise(
    result: dg.ExecuteInProcessResult, job: dg.JobDefinition, elapsed_s: float
) -> RunSummary:
    """The summary of an in-process run of `job`."""
    # The run's own selection when it was narrowed (asset_selection=…), else the whole job.
    keys = result.dagster_run.asset_selection or job.asset_layer.selected_asset_keys
    job_assets = sorted(key.to_user_string() for key in keys)
    failures = tuple(
        StepFailure(event.step_key or "run", error_cause(event.step_failure_data.error))
        for event in result.all_events
        if event.event_type == dg.DagsterEventType.STEP_FAILURE
    )
    checks = tuple(
        CheckOutcome(evaluation.check_name, evaluation.passed, evaluation.severity.value)
        for evaluation in result.get_asset_check_evaluations()
    )
    return RunSummary(
        run_id=result.run_id,
        success=result.success,
        elapsed_s=elapsed_s,
        job_assets=tuple(job_assets),
        metadata=materialization_metadata(result),
        checks=checks,
        failures=failures,
        skipped=skipped_steps(result),
    )


def asset_rows(summary: RunSummary) -> list[tuple[str, str]]:
    """(asset, result) for every asset of the job: known ones first, in pipeline order."""
    ordered = [name for name in SHOWN_METADATA if name in summary.job_assets]
    ordered += [name for name in summary.job_assets if name not in SHOWN_METADATA]
    failed_steps = {failure.step for failure in summary.failures}
    rows = []
    for asset in ordered:
        values = summary.metadata.get(asset)
        if values is None:
            missing = summary.skipped.get(asset, NOT_MATERIALISED)
            rows.append((asset, "FAILED" if asset in failed_steps else missing))
            continue
        keys = SHOWN_METADATA.get(asset, ())
        shown = [f"{key}={_fmt(values[key])}" for key in keys if key in values]
        rows.append((asset, ", ".join(shown) or "materialised"))
    return rows


def print_summary(summary: RunSummary) -> None:
    """The table on stdout; a failed run ends with its cause on one line."""
    from rich.console import Console
    from rich.table import Table

    verdict = "succeeded" if summary.success else "FAILED"
    table = Table(
        title=f"run {summary.run_id[:8]} — {verdict} in {summary.elapsed_s:.0f}s",
        caption=None if summary.success else "full log: make ui → Runs",
    )
    table.add_column("asset")
    table.add_column("result")
    for asset, result in asset_rows(summary):
        style = "red" if result in ("FAILED", NOT_MATERIALISED) else None
        table.add_row(asset, result, style=style)
    for check in summary.checks:
        shown = "passed" if check.passed else f"failed ({check.severity})"
        table.add_row(f"check {check.name}", shown, style=None if check.passed else "yellow")
    console = Console()
    console.print(table)
    if summary.cause is not None:
        # Plain print: rich would wrap a long cause over several lines.
        print(f"cause: {summary.cause}", flush=True)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)

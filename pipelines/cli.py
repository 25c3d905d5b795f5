"""Command line: `python -m pipelines.cli materialize` (headless run + summary) and `status`."""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import yaml

from models.registry import ModelLoadError
from models.settings_errors import load_settings
from models.tracking_store import TrackingStoreMissing, require_store
from pipelines.settings import REPO_ROOT, PipelineSettings


def dagster_home() -> str:
    """DAGSTER_HOME, defaulting to a repo-local folder seeded with the repo's dagster.yaml."""
    home = os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT / ".dagster_home"))
    os.makedirs(home, exist_ok=True)
    config = os.path.join(home, "dagster.yaml")
    if not os.path.exists(config):
        shutil.copy(REPO_ROOT / "dagster.yaml", config)
    return home


def materialize(
    settings: PipelineSettings, job_name: str = "training_job", run_config: Path | None = None
) -> int:
    """Run a job's assets and checks once in-process, recorded in the Dagster instance.

    `run_config` is a YAML or JSON file of Dagster run config (e.g. `ops.intent_model.config`),
    as the launchpad takes it. Runs this process left unfinished when it was killed earlier are
    marked failed first (pipelines/stale_runs.py).
    """
    import dagster as dg

    from models.process_stamp import ProcessStamp
    from pipelines.definitions import build_definitions
    from pipelines.stale_runs import fail_dead_runs

    dagster_home()
    started = time.perf_counter()
    config = {"loggers": {"console": {"config": {"log_level": "INFO"}}}}
    if run_config is not None:
        extra = yaml.safe_load(run_config.read_text(encoding="utf-8")) or {}
        if not isinstance(extra, dict):
            raise ValueError(f"{run_config}: run config must be a mapping (ops:, resources:, …)")
        config |= extra
    with dg.DagsterInstance.get() as instance:
        fail_dead_runs(instance)
        job = build_definitions(settings).resolve_job_def(job_name)
        result = job.execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config=config,
            tags=ProcessStamp.current().to_tags(),
        )
    elapsed = time.perf_counter() - started
    metadata = materialization_metadata(result)
    checks = [
        (evaluation.check_name, evaluation.passed, evaluation.severity.value)
        for evaluation in result.get_asset_check_evaluations()
    ]
    print_summary(metadata, checks, elapsed, result.success, result.run_id)
    return 0 if result.success else 1


def materialization_metadata(result: Any) -> dict[str, dict[str, Any]]:
    """Plain metadata values of every asset a job run materialised, keyed by asset."""
    return {
        event.asset_key.to_user_string(): {
            key: getattr(value, "value", value)
            for key, value in event.step_materialization_data.materialization.metadata.items()
        }
        for event in result.get_asset_materialization_events()
    }


def print_summary(
    metadata: dict[str, dict[str, Any]],
    checks: list[tuple[str, bool, str]],
    elapsed: float,
    success: bool,
    run_id: str,
) -> None:
    """A rich table of what the run did."""
    from rich.console import Console
    from rich.table import Table

    table = Table(
        title=f"run {run_id[:8]} — {'succeeded' if success else 'FAILED'} in {elapsed:.0f}s"
    )
    table.add_column("asset")
    table.add_column("result")
    wanted = {
        "raw_conversations": ("row_count",),
        "conversations": ("rows_in", "rows_kept", "rows_quarantined", "rows_added"),
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
    for asset, keys in wanted.items():
        values = metadata.get(asset)
        if values is None:
            if not success:  # a successful run simply did not select it
                table.add_row(asset, "[red]not materialised[/red]")
            continue
        shown = [f"{key}={_fmt(values[key])}" for key in keys if key in values]
        table.add_row(asset, ", ".join(shown))
    for name, passed, severity in checks:
        table.add_row(
            f"check {name}", "passed" if passed else f"[yellow]failed ({severity})[/yellow]"
        )
    Console().print(table)


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.4f}"
    if isinstance(value, dict):
        return json.dumps(value)
    return str(value)


def status(settings: PipelineSettings) -> int:
    """Print the registry status JSON (champion, challenger, gate history)."""
    print(json.dumps(_registry(settings).status(), indent=2))
    return 0


def _registry(settings: PipelineSettings):
    """The registry of an existing store (status, promote and rollback never create one)."""
    from models.registry import IntentRegistry, RegistryConfig

    require_store(settings.mlflow_tracking_uri)
    if settings.mlflow_registry_uri:
        require_store(settings.mlflow_registry_uri, "MLFLOW_REGISTRY_URI")
    return IntentRegistry(
        RegistryConfig(
            settings.mlflow_tracking_uri,
            settings.mlflow_registry_uri,
            settings.registered_model_name,
        )
    )


def promote(settings: PipelineSettings, version: str, reason: str) -> int:
    """Force `version` to champion with a recorded reason; serving follows within its poll.

    The version is loaded first as serving would load it; one that cannot be loaded is refused
    (ModelLoadError, reported by `main` as one line, exit code 2) and champion does not move.
    """
    decision = _registry(settings).force_promote(version, reason)
    print(json.dumps(decision.to_dict(), indent=2))
    return 0


def rollback(settings: PipelineSettings, reason: str) -> int:
    """Move champion back to the previous champion."""
    version = _registry(settings).rollback(reason)
    print(json.dumps({"champion": version}))
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.cli")
    parser.add_argument(
        "command", choices=("materialize", "monitor", "status", "promote", "rollback")
    )
    parser.add_argument("--version", help="promote: the model version")
    parser.add_argument("--reason", default="", help="promote/rollback: why (recorded)")
    parser.add_argument(
        "--run-config", type=Path, help="materialize/monitor: a YAML/JSON Dagster run config file"
    )
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        settings = load_settings(PipelineSettings)
        if args.command == "materialize":
            return materialize(settings, run_config=args.run_config)
        if args.command == "monitor":
            return materialize(settings, "monitoring_job", args.run_config)
        if args.command == "status":
            return status(settings)
        if args.command == "promote":
            if not args.version:
                parser.error("promote needs --version")
            return promote(settings, args.version, args.reason)
        return rollback(settings, args.reason or "manual rollback")
    except (LookupError, ValueError, OSError, ModelLoadError, TrackingStoreMissing) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())

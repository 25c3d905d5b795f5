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
from typing import TYPE_CHECKING, Any

import yaml

from models.registry import CHAMPION, IntentRegistry, ModelLoadError, RegistryConfig
from models.settings_errors import load_settings
from models.shadow_sample import challenger_shadow
from models.tracking_store import TrackingStoreMissing, require_store
from pipelines.settings import REPO_ROOT, PipelineSettings

if TYPE_CHECKING:  # Dagster is imported only by the commands that run it
    from pipelines.run_summary import AssetMetadata

logger = logging.getLogger("pipelines.cli")  # `python -m` names this module __main__


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
    marked failed first (pipelines/stale_runs.py). Progress goes to stderr as it happens
    (pipelines/progress.py); the summary, ending with the cause of a failure in one line, to
    stdout (pipelines/run_summary.py).
    """
    logger.info("loading the pipeline (Dagster, MLflow, scikit-learn)")
    import dagster as dg

    from models.process_stamp import ProcessStamp
    from pipelines.definitions import build_definitions
    from pipelines.headless import execute_headless, headless_job
    from pipelines.run_summary import print_summary, summarise
    from pipelines.stale_runs import fail_dead_runs

    dagster_home()
    started = time.perf_counter()
    config: dict[str, Any] = {"loggers": {"progress": {}}}
    if run_config is not None:
        extra = yaml.safe_load(run_config.read_text(encoding="utf-8")) or {}
        if not isinstance(extra, dict):
            raise ValueError(f"{run_config}: run config must be a mapping (ops:, resources:, …)")
        config |= extra
    with dg.DagsterInstance.get() as instance:
        fail_dead_runs(instance)
        job = headless_job(build_definitions(settings).resolve_job_def(job_name))
        tags = ProcessStamp.current().to_tags() | _partition_tags(settings, job)
        logger.info("running %s", job_name)
        try:
            result = execute_headless(job, instance, config, tags)
        except dg.DagsterInvalidConfigError as problem:
            raise ValueError(f"bad run config: {_config_errors(problem)}") from None
    print_summary(summarise(result, job, time.perf_counter() - started))
    return 0 if result.success else 1


def _partition_tags(settings: PipelineSettings, job: Any) -> dict[str, str]:
    """For a job with the daily conversation log: the range of days that changed (one line)."""
    if job.partitions_def is None:
        return {}
    from pipelines.conversation_log import plan_ingestion
    from pipelines.resources import ConversationSources

    sources = ConversationSources(
        jsonl_dir=str(settings.conversation_jsonl_dir),
        store_url=settings.conversation_store_url,
        lake_dir=str(settings.lake_dir),
    )
    plan = plan_ingestion(sources.log_sources())
    logger.info("%s", plan.describe())
    return plan.tags()


def _config_errors(problem: Any) -> str:
    """Dagster's config errors as one line: `ops.intent_model.config: message; …`."""
    from pipelines.progress import first_line

    return "; ".join(first_line(error.message) for error in problem.errors) or str(problem)


def materialization_metadata(result: Any) -> dict[str, AssetMetadata]:
    """Plain metadata values of every asset a job run materialised, keyed by asset."""
    from pipelines.run_summary import materialization_metadata as metadata

    return metadata(result)


def status(settings: PipelineSettings) -> int:
    """Print the registry status JSON (champion, challenger, gate history, shadow comparison).

    `shadow`: the challenger's answers to live traffic beside the champion's, as serving
    recorded them in the conversation store (models/shadow_sample.py); null with no challenger.
    """
    registry = _registry(settings)
    document = registry.status().to_dict()
    champion = registry.version_by_alias(CHAMPION)
    shadow = challenger_shadow(
        registry, settings.conversation_store_url, str(champion.version) if champion else None
    )
    document["shadow"] = shadow.to_dict() if shadow is not None else None
    print(json.dumps(document, indent=2))
    return 0


def _registry(settings: PipelineSettings) -> IntentRegistry:
    """The registry of an existing store (status, promote and rollback never create one)."""
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
    if args.command in ("materialize", "monitor"):
        from pipelines.progress import configure_python_logging  # imports Dagster

        configure_python_logging()
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

"""`make evaluate`: the product benchmarked end to end on any `train.csv`/`test.csv` folder.

1. The real training pipeline (`training_job`, as `make pipeline` runs it) trains on a copy of
   `train.csv` alone: the sandbox's Banking77 folder never holds `test.csv`. A copy of `test.csv`
   is read as its own labelled CSV and declared the frozen test split whole (`training_examples`
   config `test_sources`, `test_fraction: 0`): never trained on, it is what the training step's
   test metrics and the gate score, and every row of `train.csv` is train or validation, so the
   winner is refitted on all of `train.csv` (validation still calibrates it, models/training.py).
2. The version it registered is served by a real `bentoml serve` (pipelines/evaluate_serve.py).
3. `test.csv` is scored through the HTTP API; single `/predict` calls are timed at c=1.
4. The table (models/benchmark.py) is printed beside reference figures and logged as a run of
   the sandbox's `evaluation` experiment, tagged with the version evaluated.

Everything lives in a sandbox (EVALUATE_SANDBOX, default `.evaluate/`): its own Dagster home,
MLflow store and registry, conversation store and lake, so the user's champion is never touched.
The sandbox is kept between runs (its `evaluation` runs accumulate); `--fresh` starts it again.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import shutil
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from models.settings_errors import SettingsProblem, load_settings
from pipelines.evaluate_inputs import (
    TEST_SOURCE,
    EvaluationError,
    TestSet,
    default_folder,
    read_test_set,
    run_config,
)
from pipelines.sandbox import sandbox_environment as embedded_sandbox

if TYPE_CHECKING:  # imported where used: a mistyped folder is answered before seconds of imports
    from models.benchmark import BenchmarkScores, Latency
    from pipelines.settings import PipelineSettings

logger = logging.getLogger("pipelines.evaluate")  # `python -m` names this module __main__
REPO_ROOT = Path(__file__).resolve().parents[1]
DEFAULT_SANDBOX = REPO_ROOT / ".evaluate"
EXPERIMENT = "evaluation"
ALIAS = "evaluated"
TAG_VERSION = "supportloop/evaluated_version"
MARKER = ".evaluate-sandbox"  # what `--fresh` looks for before it empties a folder


@dataclass(frozen=True)
class TrainedVersion:
    """The version the pipeline registered (or reused for the same data and configuration)."""

    model_name: str
    version: str
    reused: bool


def sandbox_environment(root: Path) -> dict[str, str]:
    """Every store and source of the pipeline and the server, pointed into the sandbox."""
    return embedded_sandbox(root, root / "train_only") | {
        "SUPPORTLOOP_PROFILE": "embedded",
        "MLFLOW_REGISTRY_URI": f"sqlite:///{root / 'mlflow.db'}",
        "PIPELINE_EXECUTOR": "in_process",
    }


def prepare_sandbox(root: Path, test_set: TestSet, fresh: bool) -> None:
    """The sandbox's folders, its Dagster config and a training folder holding train.csv only."""
    if fresh and root.exists():
        # Only a folder this command made: a mistyped EVALUATE_SANDBOX must never be emptied.
        if any(root.iterdir()) and not (root / MARKER).is_file():
            raise EvaluationError(
                f"{root}: not an evaluation sandbox ({MARKER} missing): not emptied"
            )
        shutil.rmtree(root)
    for name in ("dagster_home", "incoming", "train_only"):
        (root / name).mkdir(parents=True, exist_ok=True)
    (root / MARKER).touch()
    (root / TEST_SOURCE).parent.mkdir(exist_ok=True)
    shutil.copy(test_set.folder / "test.csv", root / TEST_SOURCE)
    shutil.copy(REPO_ROOT / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    # The pipeline reads every Banking77 file of its folder: test.csv must never be there.
    (root / "train_only" / "test.csv").unlink(missing_ok=True)
    shutil.copy(test_set.folder / "train.csv", root / "train_only" / "train.csv")


def checked_settings(root: Path, test_set: TestSet) -> PipelineSettings:
    """The pipeline's settings in the sandbox, checked before it is touched (one line if bad)."""
    from models.retraining import RetrainPolicy
    from models.selection import SelectionBudget
    from pipelines.settings import PipelineSettings

    os.environ.update(sandbox_environment(root))
    # The sandbox's train-only copy exists once the sandbox is prepared: until then the
    # settings are checked against the folder it is copied from.
    os.environ["BANKING77_DIR"] = str(test_set.folder)
    settings = load_settings(PipelineSettings)
    load_settings(RetrainPolicy)  # read again by the training step: checked here, by name
    load_settings(SelectionBudget)
    os.environ["BANKING77_DIR"] = str(root / "train_only")
    # The official test file, read as the frozen test split (run_config's `test_sources`).
    os.environ["LABELLED_CSV_PATHS"] = json.dumps([str(root / TEST_SOURCE)])
    return settings.model_copy(
        update={"banking77_dir": root / "train_only", "labelled_csv_paths": [root / TEST_SOURCE]}
    )


def train(settings: PipelineSettings, config: dict[str, Any]) -> TrainedVersion:
    """`training_job` in this process on the sandbox (progress on stderr); the version made."""
    logger.info("loading the pipeline (Dagster, MLflow, scikit-learn)")
    import dagster as dg

    from pipelines.checks import ALL_CHECKS
    from pipelines.definitions import build_definitions
    from pipelines.progress import first_line, progress_logger
    from pipelines.run_summary import summarise
    from pipelines.stale_runs import fail_dead_runs

    started = time.perf_counter()
    with dg.DagsterInstance.get() as instance:
        fail_dead_runs(instance)
        job = build_definitions(settings).resolve_job_def("training_job")
        checks = frozenset(check.node_def.name for check in ALL_CHECKS)
        job = job.with_logger_defs({"progress": progress_logger(checks), **dg.default_loggers()})
        try:
            result = job.execute_in_process(
                instance=instance, raise_on_error=False, run_config=config
            )
        except dg.DagsterInvalidConfigError as problem:
            message = first_line(problem.errors[0].message) if problem.errors else str(problem)
            raise EvaluationError(f"bad run config: {message}") from None
        # Nothing changed since the sandbox's last run: training was skipped, its model stands.
        last = instance.fetch_materializations(dg.AssetKey("intent_model"), limit=1).records
    summary = summarise(result, job, time.perf_counter() - started)
    if summary.cause is not None:
        raise EvaluationError(f"training failed: {summary.cause}")
    model = summary.metadata.get("intent_model")
    if model is None:  # skipped: the version the last run made or kept, reused
        model = _plain(last[0].asset_materialization) | {"reused": True}
    return TrainedVersion(settings.registered_model_name, str(model["version"]), model["reused"])


def _plain(materialization: Any) -> dict[str, Any]:
    """A stored materialisation's metadata as plain values."""
    return {key: getattr(v, "value", v) for key, v in materialization.metadata.items()}


def point_alias(trained: TrainedVersion, uri: str) -> None:
    """The sandbox alias the server loads, on the version just trained (whatever the gate said)."""
    from models.registry import IntentRegistry, RegistryConfig

    IntentRegistry(RegistryConfig(uri, uri, trained.model_name)).set_alias(ALIAS, trained.version)


@dataclass(frozen=True)
class Evaluation:
    """One benchmark run's result, as printed and logged."""

    test_set: TestSet
    trained: TrainedVersion
    scores: BenchmarkScores
    timing: Latency | None
    table: str


def log_to_mlflow(evaluation: Evaluation, uri: str, artifact_root: str) -> str:
    """A run of the sandbox's `evaluation` experiment; returns its id."""
    import mlflow

    from models.benchmark import ANCHORS
    from models.tracking import ensure_experiment, mlflow_uris

    trained, timing = evaluation.trained, evaluation.timing
    metrics = evaluation.scores.to_metrics()
    if timing is not None:
        metrics |= {"latency_p50_ms": timing.p50_ms, "latency_p99_ms": timing.p99_ms}
    with mlflow_uris(uri, uri):
        experiment = ensure_experiment(EXPERIMENT, artifact_root)
        name = f"{evaluation.test_set.folder.name} v{trained.version}"
        with mlflow.start_run(experiment_id=experiment, run_name=name) as run:
            mlflow.set_tags(
                {
                    TAG_VERSION: trained.version,
                    "supportloop/evaluated_model": trained.model_name,
                    "supportloop/version_reused": str(trained.reused).lower(),
                }
            )
            mlflow.log_params(
                {
                    "folder": str(evaluation.test_set.folder.resolve()),
                    "train_rows": evaluation.test_set.train_rows,
                    "test_rows": len(evaluation.test_set.texts),
                    "latency_calls": timing.calls if timing else 0,
                }
            )
            mlflow.log_metrics(metrics)
            mlflow.log_text(evaluation.table, "benchmark.txt")
            mlflow.log_dict(
                {a.system: {"accuracy": a.accuracy, "source": a.source} for a in ANCHORS},
                "reference_figures_not_measured.json",
            )
            return str(run.info.run_id)


def evaluate(args: argparse.Namespace, test_set: TestSet, settings: PipelineSettings) -> int:
    """Train, serve, score, print and log (see the module docstring)."""
    from models.benchmark import render_table, score_answers
    from pipelines.evaluate_serve import (
        ServedVersion,
        probe_latency,
        running_server,
        score_batches,
        server_environment,
    )
    from serving.local_serve import free_loopback_port

    folder, root = test_set.folder, args.sandbox.resolve()
    logger.info("sandbox %s: training on %s (train.csv only)", root, folder / "train.csv")
    prepare_sandbox(root, test_set, args.fresh)
    trained = train(settings, run_config(args.run_config))
    uri = os.environ["MLFLOW_TRACKING_URI"]
    point_alias(trained, uri)
    reused = " (reused: same data and configuration as before)" if trained.reused else ""
    logger.info("serving version %s%s with bentoml serve", trained.version, reused)
    served = ServedVersion(
        trained.model_name, ALIAS, trained.version, uri, os.environ["CONVERSATION_STORE_URL"], root
    )
    port = args.port or free_loopback_port()
    env = server_environment(served, args.batch_size, dict(os.environ))
    with running_server(env, root / "serve.log", port) as url:
        logger.info("server ready at %s; scoring %d test texts", url, len(test_set.texts))
        answers = score_batches(url, test_set.texts, args.batch_size, trained.version)
        timing = None
        if args.latency_calls > 0:
            logger.info("timing %d single /predict calls at c=1", args.latency_calls)
            timing = probe_latency(url, test_set.texts, args.latency_calls)
    scores = score_answers(test_set.gold, answers)
    title = f"{trained.model_name} v{trained.version}"
    evaluation = Evaluation(test_set, trained, scores, timing, render_table(title, scores, timing))
    run_id = log_to_mlflow(evaluation, uri, str(root / "artifacts"))
    print(f"\nBenchmark of {folder}: trained on train.csv only, scored on test.csv over HTTP\n")
    print(evaluation.table)
    print(f"\nlogged: MLflow run {run_id} (experiment {EXPERIMENT!r}) in {uri}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Entry point: a problem the user can fix is one line on stderr (exit code 2)."""
    parser = argparse.ArgumentParser(prog="python -m pipelines.evaluate", description=__doc__)
    parser.add_argument("--dir", type=Path, help="folder with train.csv/test.csv (EVALUATE_DIR)")
    sandbox = Path(os.environ.get("EVALUATE_SANDBOX") or DEFAULT_SANDBOX)
    parser.add_argument("--sandbox", type=Path, default=sandbox, help="EVALUATE_SANDBOX")
    parser.add_argument("--fresh", action="store_true", help="empty the sandbox first")
    parser.add_argument("--batch-size", type=int, default=256, help="texts per /batch_predict")
    parser.add_argument("--latency-calls", type=int, default=300, help="timed /predict calls")
    parser.add_argument("--port", type=int, default=0, help="the server's port (0: a free one)")
    parser.add_argument("--run-config", type=Path, help="a YAML/JSON Dagster run config file")
    args = parser.parse_args(argv)
    if args.batch_size < 1 or args.latency_calls < 0:
        parser.error("--batch-size must be at least 1 and --latency-calls at least 0")
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    root = args.sandbox.resolve()
    try:
        # Before seconds of imports: a mistyped folder or a bad setting answers at once.
        test_set = read_test_set(args.dir or default_folder())
        settings = checked_settings(root, test_set)
    except (EvaluationError, SettingsProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    from pipelines.evaluate_serve import ServingFailed
    from pipelines.progress import configure_python_logging  # imports Dagster

    configure_python_logging()
    try:
        return evaluate(args, test_set, settings)
    except (EvaluationError, ServingFailed, SettingsProblem) as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print("interrupted: the server was stopped", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())

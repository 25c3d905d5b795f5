"""One `python -m pipelines.cli materialize` child of the scaling benches, measured.

Wall time, CPU time (user + system of the child), peak RSS of the child's process tree (psutil
polling) and of the largest single process (getrusage RUSAGE_CHILDREN), and each step's own
time from the CLI's progress lines. Used by bench/scale.py, bench/scale_pairs.py, bench/byo.py.
"""

from __future__ import annotations

import logging
import os
import re
import resource
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
logger = logging.getLogger("bench.scale")
# One cheap candidate, always the same, no hyper-parameter search (one trial: the declared
# configuration): the bench measures data, not the model search.
RUN_CONFIG = (
    "ops:\n  intent_model:\n    config:\n      candidates: [tfidf_logreg]\n      search_trials: 1\n"
)
POLL_S = 0.25
LOG_EVERY_S = 30.0  # progress lines when stderr is not a terminal
# Steps by phase, from the CLI's progress lines (`[  12s] conversation_log: finished in 6.3s`).
INGEST_STEPS = ("conversation_log", "raw_conversations", "validated_conversations")
TRAIN_STEPS = ("training_examples", "intent_model", "model_promotion")
FINISHED = re.compile(r"\] (\w+): finished in ([\d.]+)s")


@dataclass(frozen=True)
class RunCost:
    """What one `materialize` child run cost."""

    wall_s: float
    cpu_s: float
    tree_rss_mb: float  # peak of the summed RSS of the child and its descendants (polled)
    max_process_rss_mb: float  # the largest single child process (getrusage)
    ingest_s: float  # reading and validating the conversation log (its steps' own times)
    train_s: float  # examples, fitting and the gate
    ok: bool


def sandbox_env(root: Path, store_url: str) -> dict[str, str]:
    """Every store of the pipeline inside `root`; no seed CSV (only the generated data)."""
    return os.environ | {
        "SUPPORTLOOP_PROFILE": "embedded",
        "DAGSTER_HOME": str(root / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{root / 'mlflow.db'}",
        "MLFLOW_ARTIFACT_ROOT": str(root / "artifacts"),
        "MLFLOW_REGISTRY_URI": "",
        "CONVERSATION_STORE_URL": store_url,
        "LAKE_DIR": str(root / "lake"),
        "CONVERSATION_JSONL_DIR": str(root / "incoming"),
        # A header-only seed file: an empty BANKING77_DIR reads as "." (Path("") is truthy).
        "BANKING77_DIR": str(root / "no_seed"),
        "LABELLED_CSV_PATHS": "[]",
        "PIPELINE_EXECUTOR": "in_process",
        # No out-of-scope draws (models/out_of_scope.py, default 2 extra fits): data, not model.
        "TRAIN_OOS_DRAWS": "0",
    }


def tree_rss(process: psutil.Process) -> int:
    """Bytes of RSS of a process and all its descendants (0 for those already gone)."""
    total = 0
    try:
        members = [process, *process.children(recursive=True)]
    except psutil.NoSuchProcess:
        return 0
    for member in members:
        try:
            total += member.memory_info().rss
        except psutil.NoSuchProcess:
            continue
    return total


class StepPeaks:
    """Peak tree RSS per step: the peak polled since the previous step's `finished` line.

    Steps run one after another in one process (PIPELINE_EXECUTOR=in_process), so the window
    that ends with a step's `finished` line is that step (plus the run's start-up for the first).
    """

    def __init__(self, log_path: Path) -> None:
        self.log_path = log_path
        self.read = 0  # characters of the log already scanned
        self.window = 0  # peak bytes since the last finished step
        self.peaks: dict[str, int] = {}

    def poll(self, rss: int) -> None:
        """One RSS sample; attribute the window to each step that finished since the last poll."""
        self.window = max(self.window, rss)
        text = self.log_path.read_text(encoding="utf-8", errors="replace")
        new, self.read = text[self.read :], len(text)
        # Only whole lines: a partly written line is scanned again at the next poll.
        complete = new[: new.rfind("\n") + 1]
        self.read -= len(new) - len(complete)
        for name, _ in FINISHED.findall(complete):
            self.peaks[name] = self.window
            self.window = rss

    def summary(self) -> str:
        """`step MB, …` in the order the steps finished."""
        return ", ".join(f"{name} {peak / 2**20:.0f}" for name, peak in self.peaks.items())


def measure(
    label: str, root: Path, env: dict[str, str], run_config: str | None = RUN_CONFIG
) -> RunCost:
    """Run `python -m pipelines.cli materialize` once; a progress line while it runs.

    `run_config` None runs the job as `make pipeline` does (the default candidates).
    """
    command = [sys.executable, "-m", "pipelines.cli", "materialize"]
    if run_config is not None:
        config = root / "run_config.yaml"
        config.write_text(run_config, encoding="utf-8")
        command += ["--run-config", str(config)]
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    log = (root / f"{label}.log").open("w", encoding="utf-8")
    started = time.perf_counter()
    child = subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=log, stderr=log)
    handle, peak = psutil.Process(child.pid), 0
    steps = StepPeaks(root / f"{label}.log")
    # On a terminal one line redrawn in place; in a log file a line every LOG_EVERY_S.
    live, logged = sys.stderr.isatty(), 0.0
    while child.poll() is None:
        rss = tree_rss(handle)
        peak = max(peak, rss)
        steps.poll(rss)
        elapsed = time.perf_counter() - started
        line = f"  {label}: {elapsed:6.1f} s, peak RSS {peak / 2**20:7.0f} MB"
        if live:
            print(f"\r{line}", end="", file=sys.stderr, flush=True)
        elif elapsed - logged >= LOG_EVERY_S:
            print(line, file=sys.stderr, flush=True)
            logged = elapsed
        time.sleep(POLL_S)
    wall = time.perf_counter() - started
    log.close()
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(
        f"\r  {label}: {wall:6.1f} s, peak RSS {peak / 2**20:7.0f} MB, exit {child.returncode}",
        file=sys.stderr,
    )
    logger.info("%s peak tree RSS MB per step: %s", label, steps.summary())
    if child.returncode != 0:
        tail = (root / f"{label}.log").read_text(encoding="utf-8", errors="replace")[-1500:]
        logger.error("%s failed (exit %d):\n%s", label, child.returncode, tail)
    took = step_seconds((root / f"{label}.log").read_text(encoding="utf-8", errors="replace"))
    logger.info("%s step seconds: %s", label, ", ".join(f"{k} {v:.1f}" for k, v in took.items()))
    ingest = sum(took.get(name, 0.0) for name in INGEST_STEPS)
    train = sum(took.get(name, 0.0) for name in TRAIN_STEPS)
    # ru_maxrss is KiB on Linux, the largest of the waited-for children so far.
    mb = after.ru_maxrss / 1024
    return RunCost(wall, cpu, peak / 2**20, mb, ingest, train, child.returncode == 0)


def step_seconds(log: str) -> dict[str, float]:
    """Each step's own time from a `materialize` log."""
    return {name: float(seconds) for name, seconds in FINISHED.findall(log)}

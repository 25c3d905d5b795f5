"""Data scaling of ingestion → training: full run per size, then an incremental run with +1 %.

Usage: python bench/scale.py [--sizes 10000,100000,1000000] [--days 60]
                             [--source jsonl|store] [--store sqlite|postgres]

For each size, multi-turn conversations made of Banking77 utterances (bench/scale_data.py) are
streamed into a fresh sandbox: one JSONL file per day over `--days` days ending yesterday
(`--source jsonl`, default), or the chat store's `messages` table (`--source store`). The store
is a SQLite file, or a throwaway PostgreSQL (`--store postgres`, tests/postgres.py; runs as the
`postgres` user when root). Then `python -m pipelines.cli materialize` runs as a child process
(training_job: ingest every day, validate, build examples, train one fixed candidate, register,
gate), again after 1 % more messages arrive on a new day (today), and once more after another
1 % arrives without labels (no labelled example changes: the training steps are skipped,
pipelines/example_inputs.py). Each run reports wall
time, CPU time and peak RSS of the child's process tree (psutil polling) and the largest single
process (getrusage RUSAGE_CHILDREN). Ratios, computed in the same run: incremental / full, and
time per message against the smallest size (1.0 = linear growth). Targets (issue 10): growth no
faster than linear, peak RSS ≤ 4 GB at 1M messages, the 1 % run ≤ 10 % of the full run.
"""

from __future__ import annotations

import argparse
import logging
import os
import re
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import psutil

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.scale_data import (  # noqa: E402  (the repo root is on sys.path from here on)
    ConversationGenerator,
    Corpus,
    day_windows,
    write_jsonl,
    write_store,
)

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


@dataclass(frozen=True)
class SizeResult:
    """A size's generation, full run and incremental run."""

    messages: int
    added: int
    generate_s: float
    full: RunCost
    incremental: RunCost
    unlabelled: RunCost  # a further +1 % whose customer turns carry no label


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


def generate(
    generator: ConversationGenerator,
    windows: list[tuple[datetime, datetime]],
    total: int,
    sink: Path | str,
) -> int:
    """`total` messages spread evenly over `windows`: a JSONL file per day, or store rows."""
    from conversations import store_engine

    engine = None if isinstance(sink, Path) else store_engine.create_engine(sink)
    written = 0
    try:
        for index, (start, end) in enumerate(windows):
            share = (total * (index + 1)) // len(windows) - (total * index) // len(windows)
            rows = generator.day(start, end, share)
            if engine is None:
                assert isinstance(sink, Path)
                written += write_jsonl(sink / f"conversations-{start:%Y-%m-%d}.jsonl", rows)
            else:
                written += write_store(engine, rows)
            print(f"\r  generating: {written:,} / {total:,} messages", end="", file=sys.stderr)
    finally:
        if engine is not None:
            engine.dispose()
    print(file=sys.stderr)
    return written


def strip_labels(rows: Iterator[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """The rows as the chat store holds messages nobody labelled yet."""
    for row in rows:
        yield row | {"intent": None, "label_source": "none"}


def add_unlabelled(
    generator: ConversationGenerator,
    window: tuple[datetime, datetime],
    total: int,
    sink: Path | str,
) -> int:
    """`total` unlabelled messages in `window`: a second JSONL file of today, or store rows."""
    from conversations import store_engine

    rows = strip_labels(generator.day(*window, total))
    if isinstance(sink, Path):
        return write_jsonl(sink / f"unlabelled-{window[0]:%Y-%m-%d}.jsonl", rows)
    engine = store_engine.create_engine(sink)
    try:
        return write_store(engine, rows)
    finally:
        engine.dispose()


def run_size(
    messages: int, args: argparse.Namespace, corpus: Corpus, store_url: str, root: Path
) -> SizeResult:
    """Generate `messages`, run the pipeline on them, add 1 % on today, run it again; then
    another 1 % without labels, and a third run."""
    (root / "incoming").mkdir(parents=True)
    (root / "no_seed").mkdir()
    (root / "no_seed" / "train.csv").write_text("text,category\n", encoding="utf-8")
    env = sandbox_env(root, store_url)
    sink: Path | str = root / "incoming" if args.source == "jsonl" else store_url
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    generator = ConversationGenerator(corpus, seed=messages, users=messages // 20, prefix="")
    started = time.perf_counter()
    generated = generate(generator, day_windows(today, args.days), messages, sink)
    generate_s = time.perf_counter() - started
    full = measure(f"{messages}-full", root, env)
    # A new day's messages: a new file (or new store rows), ids apart from the first batch's.
    later = ConversationGenerator(corpus, seed=messages + 1, users=messages // 20, prefix="n")
    now = datetime.now(UTC)
    added = generate(later, [(today, now)], max(messages // 100, 1), sink)
    incremental = measure(f"{messages}-incremental", root, env)
    quiet = ConversationGenerator(corpus, seed=messages + 2, users=messages // 20, prefix="q")
    window = (today, datetime.now(UTC))
    add_unlabelled(quiet, window, max(messages // 100, 1), sink)
    unlabelled = measure(f"{messages}-unlabelled", root, env)
    return SizeResult(generated, added, generate_s, full, incremental, unlabelled)


@contextmanager
def conversation_store(kind: str, root: Path) -> Iterator[str]:
    """The store URL of one size: a SQLite file, or a database on a throwaway PostgreSQL."""
    if kind == "sqlite":
        yield f"sqlite:///{root / 'conversations.db'}"
        return
    from tests.postgres import start_postgres

    server = start_postgres()
    try:
        yield server.create_database("scale")
    finally:
        server.stop()


def table(results: list[SizeResult]) -> str:
    """Markdown table: costs per size, incremental/full, seconds per 1k messages vs smallest."""
    base = results[0].full.wall_s / results[0].messages
    lines = [
        "| messages | generate s | full s (ingest / train) | full CPU s "
        "| full peak RSS MB (tree / largest) | +1 % s (ingest / train) | +1 % CPU s "
        "| +1 % peak RSS MB | +1 % / full (ingest) | +1 % / full CPU | s per 1k msgs "
        "| vs smallest | +1 % unlabelled CPU s | unlabelled / full CPU |",
        "|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        full, inc = r.full, r.incremental
        per_message = full.wall_s / r.messages
        quiet = r.unlabelled
        failed = "" if full.ok and inc.ok and quiet.ok else " (a run FAILED)"
        lines.append(
            f"| {r.messages:,}{failed} | {r.generate_s:.1f} "
            f"| {full.wall_s:.1f} ({full.ingest_s:.1f} / {full.train_s:.1f}) | {full.cpu_s:.1f} "
            f"| {full.tree_rss_mb:.0f} / {full.max_process_rss_mb:.0f} "
            f"| {inc.wall_s:.1f} ({inc.ingest_s:.1f} / {inc.train_s:.1f}) | {inc.cpu_s:.1f} "
            f"| {inc.tree_rss_mb:.0f} | {inc.wall_s / full.wall_s:.2f}× "
            f"({inc.ingest_s / max(full.ingest_s, 1e-9):.2f}×) "
            f"| {inc.cpu_s / max(full.cpu_s, 1e-9):.2f}× "
            f"| {1000 * per_message:.2f} | {per_message / base:.2f}× "
            f"| {quiet.cpu_s:.1f} | {quiet.cpu_s / max(full.cpu_s, 1e-9):.2f}× |"
        )
    return "\n".join(lines)


def main() -> int:
    """Run every size in its own sandbox and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="10000,100000,1000000")
    parser.add_argument("--days", type=int, default=60, help="days the full history spans")
    parser.add_argument("--source", choices=("jsonl", "store"), default="jsonl")
    parser.add_argument("--store", choices=("sqlite", "postgres"), default="sqlite")
    parser.add_argument(
        "--banking77",
        type=Path,
        default=Path(os.environ.get("BANKING77_DIR") or REPO_ROOT.parent / "shared/data/banking77"),
    )
    parser.add_argument("--keep", action="store_true", help="keep the sandboxes (printed)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    corpus = Corpus.load(args.banking77)
    results = []
    for size in (int(s) for s in args.sizes.split(",")):
        root = Path(tempfile.mkdtemp(prefix=f"scale-{size}-"))
        print(
            f"{size:,} messages ({args.source} → {args.store} store), sandbox {root}",
            file=sys.stderr,
        )
        try:
            with conversation_store(args.store, root) as url:
                results.append(run_size(size, args, corpus, url, root))
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
        print(table(results), flush=True)
    return 0 if all(r.full.ok and r.incremental.ok and r.unlabelled.ok for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())

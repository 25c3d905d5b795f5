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
import shutil
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.scale_data import (  # noqa: E402  (the repo root is on sys.path from here on)
    ConversationGenerator,
    Corpus,
    day_windows,
    write_jsonl,
    write_store,
)
from bench.scale_run import (  # noqa: E402  (bench/byo.py and scale_pairs.py import them here)
    RUN_CONFIG,
    RunCost,
    measure,
    sandbox_env,
    step_seconds,
)

__all__ = ["RUN_CONFIG", "RunCost", "measure", "sandbox_env", "step_seconds"]

logger = logging.getLogger("bench.scale")


@dataclass(frozen=True)
class SizeResult:
    """A size's generation, full run and incremental run."""

    messages: int
    added: int
    generate_s: float
    full: RunCost
    incremental: RunCost
    unlabelled: RunCost  # a further +1 % whose customer turns carry no label


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

"""Paired +1 % runs of two code trees on one kept `bench/scale.py` sandbox.

Usage: python bench/scale_pairs.py SANDBOX TREE [TREE ...] [--rounds 4] [--profile]

SANDBOX is a sandbox `bench/scale.py --keep` left (`/tmp/scale-<size>-…`). Its state is copied
once to SANDBOX.snap (kept, reused by later invocations); logs go to SANDBOX.pairs/. Each round
generates a further 1 % of labelled messages on the sandbox's last day (one file per round, the
same for every tree), then for each TREE (e.g. `git archive` exports with the venv linked in)
restores the sandbox from the copy *at the same path* (the retrain rule's kept index names the
registry by its URI, which holds the path), adds the file and runs `python -m pipelines.cli
materialize` from the tree with the bench's run config. Prints CPU s (user + system of the
child), wall and whether the training steps were skipped; then the median CPU s per tree.
`--profile` runs the child under cProfile with a CPU clock, the stats written to SANDBOX.pairs/.
"""

from __future__ import annotations

import argparse
import re
import resource
import shutil
import statistics
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.scale_data import ConversationGenerator, Corpus, write_jsonl  # noqa: E402
from bench.scale_run import RUN_CONFIG, sandbox_env  # noqa: E402

SKIPPED = "intent_model and model_promotion skipped"
PROFILED = (
    "import cProfile, runpy, sys, time\n"
    "sys.argv = ['pipelines.cli', 'materialize', '--run-config', sys.argv[1]]\n"
    "profile = cProfile.Profile(time.process_time)\n"
    "profile.enable()\n"
    "try:\n    runpy.run_module('pipelines.cli', run_name='__main__')\n"
    "except SystemExit:\n    pass\n"
    "profile.disable()\n"
    "profile.dump_stats(sys.argv[2])\n"
)


def last_day(snapshot: Path) -> datetime:
    """The day of the newest `conversations-<day>.jsonl` in the sandbox's incoming folder."""
    newest = sorted((snapshot / "incoming").glob("conversations-*.jsonl"))[-1]
    day = datetime.strptime(newest.stem.removeprefix("conversations-"), "%Y-%m-%d")
    return day.replace(tzinfo=UTC)


def extra_file(corpus: Corpus, size: int, day: datetime, round_: int, folder: Path) -> Path:
    """A further 1 % of labelled messages in the first half hour of `day` (made once)."""
    path = folder / f"pairs-extra-{size}-{round_}.jsonl"
    if not path.exists():
        generator = ConversationGenerator(
            corpus, seed=size + 100 + round_, users=size // 20, prefix=f"x{round_}"
        )
        write_jsonl(path, generator.day(day, day + timedelta(minutes=30), max(size // 100, 1)))
    return path


def run_once(tree: Path, root: Path, label: str, profile: bool) -> tuple[float, float, str]:
    """One `materialize` from `tree` on `root`: CPU s, wall s, and its log's text."""
    config = root / "run_config.yaml"
    config.write_text(RUN_CONFIG, encoding="utf-8")
    command = [str(tree / ".venv/bin/python")]
    if profile:
        command += ["-c", PROFILED, str(config), str(Path(f"{root}.pairs") / f"{label}.pstats")]
    else:
        command += ["-m", "pipelines.cli", "materialize", "--run-config", str(config)]
    log = Path(f"{root}.pairs") / f"{label}.log"
    env = sandbox_env(root, f"sqlite:///{root / 'conversations.db'}")
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    with log.open("w", encoding="utf-8") as out:
        subprocess.run(command, cwd=tree, env=env, stdout=out, stderr=out, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return cpu, wall, log.read_text(encoding="utf-8", errors="replace")


def main() -> int:
    """Alternate the trees round by round; print each run and the medians."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("sandbox", type=Path)
    parser.add_argument("trees", type=Path, nargs="+")
    parser.add_argument("--rounds", type=int, default=4)
    parser.add_argument("--profile", action="store_true")
    parser.add_argument(
        "--banking77", type=Path, default=REPO_ROOT.parent / "shared/data/banking77"
    )
    args = parser.parse_args()
    root: Path = args.sandbox.resolve()
    snapshot = Path(f"{root}.snap")
    if not snapshot.exists():
        shutil.copytree(root, snapshot, symlinks=True)
    work = Path(f"{root}.pairs")
    work.mkdir(exist_ok=True)
    size = int(root.name.split("-")[1])
    day, corpus = last_day(snapshot), Corpus.load(args.banking77)
    cpu: dict[Path, list[float]] = {tree: [] for tree in args.trees}
    for round_ in range(args.rounds):
        extra = extra_file(corpus, size, day, round_, work)
        for tree in args.trees:
            shutil.rmtree(root, ignore_errors=True)
            shutil.copytree(snapshot, root, symlinks=True)
            shutil.copy(extra, root / "incoming" / f"extra-{round_}-{day:%Y-%m-%d}.jsonl")
            label = f"pairs-{tree.name}-{round_}"
            seconds, wall, log = run_once(tree.resolve(), root, label, args.profile)
            cpu[tree].append(seconds)
            steps = re.findall(r"\] (\w+): finished in ([\d.]+)s", log)
            print(
                f"round {round_} {tree.name}: CPU {seconds:.2f} s, wall {wall:.1f} s, "
                f"{'training skipped' if SKIPPED in log else 'training steps ran'}; "
                + ", ".join(f"{name} {took}" for name, took in steps),
                flush=True,
            )
    for tree, values in cpu.items():
        print(f"{tree.name}: median CPU {statistics.median(values):.2f} s of {len(values)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())

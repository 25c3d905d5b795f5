"""Bring your own conversations: `make pipeline` on generated multi-turn dialogues only.

Usage: python bench/byo.py [--sizes 25000,250000] [--days 30] [--compare-max-train 20000]

For each size, dialogues of about 40 intents (bench/byo_data.py), many of whose turns mean
different intents in different conversations ("yes please", "thank you", "what about the
fee?"), are written as one JSONL file per day into a fresh sandbox, with Banking77 off
(`BANKING77_DIR=`). Then `python -m pipelines.cli materialize` runs as a child process exactly as
`make pipeline` does (training_job, the default candidates, the gate), measured by bench/scale.py
(wall, CPU, peak RSS of the process tree, each step's own time). Afterwards the champion is
scored on the frozen test split, overall and on the context-dependent turns; and, to show what
context buys, the text-only `tfidf_logreg` and the context-aware `tfidf_logreg_dialogue` are
fitted in this process on the same training sample and scored on the same turns. Targets
(issue 15): ≤ 10 min and ≤ 3 GB at 250k messages, a champion registered, the context candidate
better on context-dependent turns and chosen by the selection.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import sys
import tempfile
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import pandas as pd

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))

from bench.byo_data import CONTEXT_INTENTS, DialogueGenerator  # noqa: E402
from bench.scale import RunCost, measure, sandbox_env, step_seconds  # noqa: E402
from bench.scale_data import day_windows, write_jsonl  # noqa: E402

logger = logging.getLogger("bench.byo")
TEXT_ONLY, WITH_CONTEXT = "tfidf_logreg", "tfidf_logreg_dialogue"


@dataclass(frozen=True)
class Accuracy:
    """Accuracy on the test split: every turn, and the turns whose intent needs context."""

    overall: float
    context_turns: float


@dataclass(frozen=True)
class SizeResult:
    """One size: the run's cost, what it chose, and how the candidates score."""

    messages: int
    examples: int
    run: RunCost
    steps: dict[str, float]
    champion: str
    candidate: str
    champion_accuracy: Accuracy | None
    compared: dict[str, Accuracy]


def generate(root: Path, messages: int, days: int) -> int:
    """`messages` rows spread over `days` day files in `root`/incoming."""
    generator = DialogueGenerator(seed=messages, users=max(messages // 15, 1))
    today = datetime.now(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    windows = day_windows(today, days)
    written = 0
    for index, (start, end) in enumerate(windows):
        share = (messages * (index + 1)) // days - (messages * index) // days
        path = root / "incoming" / f"dialogues-{start:%Y-%m-%d}.jsonl"
        written += write_jsonl(path, generator.day(start, end, share))
    return written


def accuracy(pipeline: object, test: pd.DataFrame) -> Accuracy:
    """Accuracy of a fitted pipeline on `test`, overall and on its context-dependent turns."""
    from models.inputs import model_input

    predicted = pipeline.predict(model_input(test))  # type: ignore[attr-defined]
    right = pd.Series(predicted == test["intent"].to_numpy(), index=test.index)
    dependent = test["intent"].isin(CONTEXT_INTENTS)
    return Accuracy(float(right.mean()), float(right[dependent].mean()))


def champion(env: dict[str, str]) -> tuple[str, str, object | None]:
    """The champion's version (else the challenger's, marked), its candidate and pipeline."""
    from models.registry import IntentRegistry, RegistryConfig

    registry = IntentRegistry(RegistryConfig(env["MLFLOW_TRACKING_URI"]))
    version = registry.version_by_alias("champion")
    label = str(version.version) if version is not None else "none"
    if version is None:
        version = registry.version_by_alias("challenger")
        if version is None:
            return "none", "none", None
        label = f"none (challenger v{version.version} refused by the gate)"
    run = registry.client.get_run(version.run_id) if version.run_id else None
    candidate = run.data.params.get("candidate", "?") if run else "?"
    return label, candidate, registry.load_pipeline(str(version.version))


def compare(examples: pd.DataFrame, max_train: int) -> dict[str, Accuracy]:
    """Text-only and context-aware logistic regression, same training sample, same test turns."""
    from models.candidates import resolve

    train = examples[examples["split"] == "train"]
    if len(train) > max_train:
        train = train.sample(max_train, random_state=0)
    test = examples[examples["split"] == "test"]
    scores = {}
    for candidate in resolve([TEXT_ONLY, WITH_CONTEXT]):
        from models.inputs import model_input

        started = time.perf_counter()
        pipeline = candidate.build().fit(model_input(train), train["intent"].to_numpy())
        scores[candidate.name] = accuracy(pipeline, test)
        logger.info(
            "%s fitted on %d in %.1f s", candidate.name, len(train), time.perf_counter() - started
        )
    return scores


def run_size(messages: int, args: argparse.Namespace, root: Path) -> SizeResult:
    """Generate, run `make pipeline`'s job on it, then score."""
    (root / "incoming").mkdir(parents=True)
    env = sandbox_env(root, f"sqlite:///{root / 'conversations.db'}") | {"BANKING77_DIR": ""}
    started = time.perf_counter()
    generated = generate(root, messages, args.days)
    logger.info("generated %d messages in %.1f s", generated, time.perf_counter() - started)
    run = measure(f"{messages}-byo", root, env, run_config=None)
    steps = step_seconds((root / f"{messages}-byo.log").read_text("utf-8", errors="replace"))
    examples = pd.read_parquet(root / "lake" / "training_examples.parquet")
    version, candidate, pipeline = champion(env)
    test = examples[examples["split"] == "test"]
    champion_accuracy = accuracy(pipeline, test) if pipeline is not None else None
    compared = compare(examples, args.compare_max_train) if args.compare_max_train else {}
    return SizeResult(
        generated, len(examples), run, steps, version, candidate, champion_accuracy, compared
    )


def report(result: SizeResult) -> str:
    """Markdown lines for one size."""
    run = result.run
    lines = [
        f"### {result.messages:,} messages, {result.examples:,} examples",
        "",
        f"- run: {'ok' if run.ok else 'FAILED'}, wall {run.wall_s:.1f} s, CPU {run.cpu_s:.1f} s, "
        f"peak RSS {run.tree_rss_mb:.0f} MB (tree) / {run.max_process_rss_mb:.0f} MB (largest)",
        "- steps: " + ", ".join(f"{name} {s:.1f} s" for name, s in result.steps.items()),
        f"- champion: version {result.champion}; chosen candidate `{result.candidate}`",
    ]
    if result.champion_accuracy is not None:
        acc = result.champion_accuracy
        lines.append(
            f"- champion on test: accuracy {acc.overall:.4f}, "
            f"on context-dependent turns {acc.context_turns:.4f}"
        )
    for name, acc in result.compared.items():
        lines.append(
            f"- `{name}` (same sample): accuracy {acc.overall:.4f}, "
            f"context-dependent turns {acc.context_turns:.4f}"
        )
    return "\n".join(lines)


def main() -> int:
    """Every size in its own sandbox; a report per size on stdout."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="25000,250000")
    parser.add_argument("--days", type=int, default=30, help="days the history spans")
    parser.add_argument(
        "--compare-max-train",
        type=int,
        default=20_000,
        help="training sample of the in-process comparison (0: no comparison)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the sandboxes")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    ok = True
    for size in (int(s) for s in args.sizes.split(",")):
        root = Path(tempfile.mkdtemp(prefix=f"byo-{size}-"))
        print(f"{size:,} messages, sandbox {root}", file=sys.stderr)
        try:
            result = run_size(size, args, root)
        finally:
            if not args.keep:
                shutil.rmtree(root, ignore_errors=True)
        ok = ok and result.run.ok and not result.champion.startswith("none")
        print(report(result), flush=True)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())

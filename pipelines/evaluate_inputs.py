"""`make evaluate`'s inputs: the folder evaluated, checked before anything runs, and run config.

Light on purpose (csv and yaml only): a mistyped folder or a missing column is answered in a
second, before the pipeline's imports.
"""

from __future__ import annotations

import csv
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

COLUMNS = ("text", "category")
# Where the sandbox keeps its copy of test.csv, relative to the sandbox: also the rows' `source`
# lineage name (`folder/file`), which the run config declares the frozen test split.
TEST_SOURCE = "official_test/test.csv"


class EvaluationError(Exception):
    """A problem the user fixes (a missing file or column, a failed run): one line, exit 2."""


@dataclass(frozen=True)
class TestSet:
    """The folder evaluated: how many training rows it has, and the test texts with gold labels."""

    folder: Path
    train_rows: int
    texts: list[str]
    gold: list[str]


def default_folder() -> Path | None:
    """EVALUATE_DIR, else the folder BANKING77_DIR resolves to (the shared one when unset)."""
    if chosen := os.environ.get("EVALUATE_DIR"):
        return Path(chosen)
    if "BANKING77_DIR" in os.environ:
        return Path(os.environ["BANKING77_DIR"]) if os.environ["BANKING77_DIR"].strip() else None
    from pipelines.settings import DEFAULT_BANKING77_DIR  # pandas and pydantic: ~1.5 s

    return DEFAULT_BANKING77_DIR


def read_rows(path: Path) -> list[dict[str, str]]:
    """The `text,category` rows of a CSV; a missing file, column or value names the file."""
    if not path.is_file():
        raise EvaluationError(f"{path}: no such file (the folder needs train.csv and test.csv)")
    try:
        with path.open(newline="", encoding="utf-8") as handle:
            reader = csv.DictReader(handle)
            missing = [c for c in COLUMNS if c not in (reader.fieldnames or [])]
            if missing:
                raise EvaluationError(
                    f"{path}: missing column(s) {', '.join(missing)} (needs text,category)"
                )
            rows = list(reader)
    except (UnicodeDecodeError, csv.Error) as error:
        raise EvaluationError(f"{path}: not a readable UTF-8 CSV ({error})") from None
    for line, row in enumerate(rows, start=2):
        if not (row.get("text") or "").strip() or not (row.get("category") or "").strip():
            raise EvaluationError(f"{path}: line {line} has an empty text or category")
    if not rows:
        raise EvaluationError(f"{path}: no rows")
    return rows


def read_test_set(folder: Path | None) -> TestSet:
    """Both files of `folder` checked; the test texts and their gold intents."""
    if folder is None:
        raise EvaluationError("no folder to evaluate: set EVALUATE_DIR=… (train.csv, test.csv)")
    if not folder.is_dir():
        raise EvaluationError(f"{folder}: no such folder (EVALUATE_DIR=… names one)")
    train = read_rows(folder / "train.csv")
    test = read_rows(folder / "test.csv")
    return TestSet(folder, len(train), [r["text"] for r in test], [r["category"] for r in test])


def run_config(extra: Path | None) -> dict[str, Any]:
    """The training run's config: progress lines, a forced retrain, test.csv as the frozen test
    split, and the user's own file.

    Forced: data changed by less than the retrain rule's threshold would otherwise keep the
    previous version; the same data and configuration still reuse theirs (nothing to retrain).
    """
    config: dict[str, Any] = {}
    if extra is not None:
        try:
            config = yaml.safe_load(extra.read_text(encoding="utf-8")) or {}
        except (OSError, yaml.YAMLError) as error:
            problem = " ".join(str(error).split())[:300]  # YAML's messages span lines
            raise EvaluationError(f"{extra}: {type(error).__name__}: {problem}") from None
        if not isinstance(config, dict):
            raise EvaluationError(f"{extra}: run config must be a mapping (ops:, …)")
    ops = config.setdefault("ops", {})
    model = ops.setdefault("intent_model", {}).setdefault("config", {})
    model.setdefault("force_retrain", True)
    # test.csv is the frozen test split whole and train.csv all train + validation (the user's
    # file may set other splits).
    split = ops.setdefault("training_examples", {}).setdefault("config", {})
    split.setdefault("test_fraction", 0.0)
    split.setdefault("test_sources", [TEST_SOURCE])
    return config | {"loggers": {"progress": {}}}

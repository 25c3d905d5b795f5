"""The fallback objective on Banking77 as training chooses it (issue 11; bench/README.md).

Usage: python bench/fallback_objective_run.py [candidate]   (TRAIN_FALLBACK_*, TRAIN_OOS_* apply)

Trains `candidate` (default `tfidf_minilm_linearsvc`) on Banking77 train.csv with the pipeline's
splits, search at one trial, and prints the chosen fallback policy and why, the out-of-scope
draws, the frozen test split's figures and the registered model's figures on the official
test.csv: top-1, fallback rate, answered accuracy, accuracy with a fallback as a miss, ECE.
"""

from __future__ import annotations

import json
import logging
import os
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

os.environ.setdefault("TRAIN_SEARCH_TRIALS", "1")
REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))
BANKING77 = Path(os.environ.get("BANKING77_DIR", REPO_ROOT.parent / "shared/data/banking77"))

from models.calibration import expected_calibration_error  # noqa: E402
from models.candidates import resolve  # noqa: E402
from models.inputs import model_input  # noqa: E402
from models.splits import assign_splits  # noqa: E402
from models.training import TrainingOutcome, train_intent_model  # noqa: E402


def read(split: str) -> pd.DataFrame:
    """A Banking77 CSV as training examples (`intent`, an empty JSON context)."""
    frame = pd.read_csv(BANKING77 / f"{split}.csv").rename(columns={"category": "intent"})
    return frame.assign(context="{}")


def official_test(outcome: TrainingOutcome) -> str:
    """The registered model's figures on test.csv under its fallback policy."""
    test = read("test")
    probabilities = outcome.pipeline.predict_proba(model_input(test))
    classes = np.asarray(outcome.pipeline.classes_)
    right = classes[probabilities.argmax(axis=1)] == test["intent"].to_numpy()
    answered = ~outcome.fallback.is_fallback(probabilities)
    ece = expected_calibration_error(probabilities.max(axis=1), right)
    return (
        f"official test: top1 {right.mean():.4f} fallback {1 - answered.mean():.4f} "
        f"answered_acc {right[answered].mean():.4f} "
        f"acc_fallback_as_miss {(right & answered).mean():.4f} ece {ece:.4f}"
    )


def main() -> None:
    """Train, then print the policy, the draws and both test figures."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    candidate = sys.argv[1] if len(sys.argv) > 1 else "tfidf_minilm_linearsvc"
    frame = read("train")
    frame["split"] = assign_splits(frame["text"].tolist(), frame["intent"].tolist())
    splits = [frame[frame["split"] == name] for name in ("train", "validation", "test")]
    started = time.perf_counter()
    outcome = train_intent_model(resolve([candidate]), *splits)
    report = outcome.out_of_scope
    print(f"trained in {time.perf_counter() - started:.1f} s")
    print("policy", json.dumps(outcome.fallback.to_dict()))
    if report is not None:
        print("reason", report.policy_reason)
        print("out-of-scope", report.metrics())
        print("draws", [(d.recall, d.in_scope_answered_accuracy) for d in report.draws])
    print("frozen test", outcome.test)
    print(official_test(outcome))


if __name__ == "__main__":
    main()

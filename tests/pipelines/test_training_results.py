"""What `intent_model` records about a fit, on a real quick training of the six-intent slice:
the MLflow params of its run (pipelines/assets/training.py `run_params`) and the candidate table
and confusion matrix the Dagster UI shows (pipelines/assets/training_results.py).
"""

from __future__ import annotations

import base64
import dataclasses
import io

import pandas as pd
import pytest
from PIL import Image

from models.search import SearchSettings
from models.selection import SelectionBudget, SkippedCandidate
from models.splits import assign_splits
from models.training import TrainingOutcome
from pipelines.assets.training import TrainingConfig, run_params
from pipelines.assets.training_results import candidates_table, confusion_matrix
from tests.conftest import trained


@pytest.fixture(scope="module")
def outcome(small_slice: pd.DataFrame) -> TrainingOutcome:
    """tfidf_logreg fitted on the slice's train / validation / test splits."""
    frame = small_slice.rename(columns={"category": "intent"}).assign(context="{}")
    frame["split"] = assign_splits(frame["text"].tolist(), frame["intent"].tolist())
    splits = [frame[frame["split"] == name] for name in ("train", "validation", "test")]
    return trained("tfidf_logreg", splits)


def test_the_run_params_are_the_run_config_the_budgets_and_what_was_left_out(outcome):
    config = TrainingConfig(fallback_accuracy_budget=0.03, min_examples_per_intent=4)
    budget = SelectionBudget(max_examples=1234, seconds=56.0)
    search = SearchSettings(trials=3, seconds=7.0, seed=11)
    params = run_params(config, budget, search, outcome)
    assert params == {
        "fallback_accuracy_budget": 0.03,
        "min_examples_per_intent": 4,
        "excluded_intents": "none",
        "selection_max_examples": 1234,
        "selection_budget_s": 56.0,
        "selection_examples": outcome.selection_examples,
        "skipped_candidates": "none",
        "search_trials": 3,
        "search_budget_s": 7.0,
        "search_seed": 11,
    }


def test_long_exclusion_lists_are_cut_to_an_mlflow_param(outcome):
    # MLflow refuses a param value past its limit: the lists are cut, not the run.
    excluded = [f"intent_{n:03d}" for n in range(100)]
    skipped = [SkippedCandidate(f"c{n}", "x" * 40) for n in range(20)]
    crowded = dataclasses.replace(outcome, excluded_intents=excluded, skipped=skipped)
    params = run_params(TrainingConfig(), SelectionBudget(), SearchSettings(), crowded)
    assert params["excluded_intents"] == ",".join(excluded)[:500]
    assert len(params["excluded_intents"]) == 500
    assert params["skipped_candidates"] == "; ".join(s.reason for s in skipped)[:500]


def test_the_candidate_table_has_a_row_per_fitted_candidate(outcome):
    table = candidates_table(outcome).value
    lines = table.splitlines()
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    assert header[0] == "candidate" and header[-2:] == ["fit_s", "trials"]
    assert len(lines) == 2 + len(outcome.candidates)
    assert [line.strip("|").split("|")[0].strip() for line in lines[2:]] == [
        result.name for result in outcome.candidates
    ]


def test_the_confusion_matrix_is_an_inline_png(outcome):
    markdown = confusion_matrix(outcome).value
    assert markdown.startswith("![cm.png](data:image/png;base64,")
    encoded = markdown.removeprefix("![cm.png](data:image/png;base64,").removesuffix(")")
    image = Image.open(io.BytesIO(base64.b64decode(encoded)))
    assert image.format == "PNG" and image.width > 0

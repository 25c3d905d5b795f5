"""The gate predicts every test example with its own context, as the model was trained.

On multi-turn data an answer's intent depends on what came before it ("yes please" after a lost
card is `confirm_block`). The behavioural invariance check perturbs test texts; predicting them
without their context flips context-dependent answers and refuses a good first model.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from conversations.readers import read_conversation_jsonl
from conversations.validation import validate_messages
from models.candidates import resolve
from models.examples import build_training_examples
from models.gate import gate_inputs
from models.gate_records import PromotionRules
from models.promotion import decide_promotion
from models.selection import SelectionBudget
from models.training import train_intent_model
from tests.conftest import trained
from tests.dialogues import write_dialogues


@pytest.fixture(scope="module")
def dialogue_examples(tmp_path_factory: pytest.TempPathFactory) -> pd.DataFrame:
    path: Path = tmp_path_factory.mktemp("dialogues") / "dialogues.jsonl"
    write_dialogues(path, conversations=600)
    kept = validate_messages(read_conversation_jsonl(path), 2000).kept
    return build_training_examples(kept, test_fraction=0.2, validation_fraction=0.1, seed=0)


def test_invariance_on_dialogues_predicts_with_context_and_registers_first_model(
    dialogue_examples: pd.DataFrame,
) -> None:
    train, validation, test = (
        dialogue_examples[dialogue_examples["split"] == s] for s in ("train", "validation", "test")
    )
    # The dialogue champion of tests/serving/chat/dialogue_model.py: fitted once a run.
    outcome = trained("tfidf_logreg_dialogue", [train, validation, test])
    rules = PromotionRules()
    inputs = gate_inputs(outcome.pipeline, "1", None, None, dialogue_examples, rules, 2000)

    behavioural = inputs.behavioural
    assert behavioural is not None
    assert min(behavioural.invariance.values()) >= rules.min_invariance, behavioural.invariance
    decision = decide_promotion(inputs)
    assert decision.passed, decision.to_dict()


def test_gate_fits_its_baselines_on_at_most_the_selection_budget(
    dialogue_examples: pd.DataFrame,
) -> None:
    train, validation, test = (
        dialogue_examples[dialogue_examples["split"] == s] for s in ("train", "validation", "test")
    )
    outcome = train_intent_model(resolve(["tfidf_logreg"]), train, validation, test)
    budget = SelectionBudget(max_examples=len(train) // 4)

    inputs = gate_inputs(
        outcome.pipeline,
        "1",
        None,
        None,
        dialogue_examples,
        PromotionRules(),
        2000,
        baseline_budget=budget,
    )

    assert [b.name for b in inputs.baselines] == ["majority_class", "word_tfidf_linear"]
    assert all(0 < b.fitted_on <= budget.max_examples for b in inputs.baselines)
    # The challenger is still scored on the whole test split.
    assert sum(inputs.intent_support.values()) == len(test)

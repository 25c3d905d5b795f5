"""Gathering the gate's inputs: scores of both models, behavioural tests, data quality."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from models.baselines import score_baselines
from models.behavioural import Utterance, load_functionality, run_behavioural_suite
from models.data_quality import check_training_data
from models.evaluation import predict_labelled, summary_metrics
from models.gate_records import GateInputs, ModelScore, PromotionRules
from models.inputs import model_input
from models.selection import SelectionBudget
from models.splits import FEEDBACK, TEST

FUNCTIONALITY_PATH = (
    Path(__file__).resolve().parents[1] / "data" / "behavioral" / ("minimum_functionality.yaml")
)
INVARIANCE_SAMPLE = 300


def score_model(
    pipeline: Any, version: str, test: pd.DataFrame, feedback: pd.DataFrame
) -> ModelScore:
    """Accuracy, macro-F1 and per-intent F1 on the frozen test split; accuracy on feedback.

    `feedback` is the held-out agent-labelled split (models/examples.py): neither model trained
    on it, and only agents' labels are in it.
    """
    predictions, _ = predict_labelled(pipeline, model_input(test), test["intent"])
    metrics = summary_metrics(predictions)
    intents = sorted(set(test["intent"]))
    per_intent = f1_score(
        predictions.true, predictions.predicted, labels=intents, average=None, zero_division=0
    )
    feedback_accuracy = None
    if len(feedback):
        answered = pipeline.predict(model_input(feedback))
        feedback_accuracy = float(accuracy_score(feedback["intent"].astype(str), answered))
    return ModelScore(
        version,
        metrics["accuracy"],
        metrics["macro_f1"],
        {intent: round(float(f1), 4) for intent, f1 in zip(intents, per_intent, strict=True)},
        feedback_accuracy,
    )


def _predict_utterances(pipeline: Any) -> Any:
    def predict(utterances: list[Utterance]) -> list[str]:
        frame = pd.DataFrame(
            {"text": [u.text for u in utterances], "context": [u.context for u in utterances]}
        )
        return list(pipeline.predict(model_input(frame)))

    return predict


def invariance_cases(test: pd.DataFrame, size: int = INVARIANCE_SAMPLE) -> list[Utterance]:
    """A seeded sample of test examples, each with its own context as the model was trained."""
    sample = test.sample(min(size, len(test)), random_state=0)
    contexts = sample["context"] if "context" in sample else pd.Series(None, index=sample.index)
    return [
        Utterance(str(text), _context_text(context))
        for text, context in zip(sample["text"], contexts, strict=True)
    ]


def _context_text(context: Any) -> str:
    """A stored context (JSON text, a mapping, or absent) as the JSON text models read."""
    if isinstance(context, str) and context:
        return context
    if isinstance(context, dict):
        return json.dumps(context, sort_keys=True)
    return "{}"


def gate_inputs(
    challenger: Any,
    challenger_version: str,
    champion: Any | None,
    champion_version: str | None,
    examples: pd.DataFrame,
    rules: PromotionRules,
    max_text_chars: int,
    functionality_path: Path = FUNCTIONALITY_PATH,
    baseline_budget: SelectionBudget | None = None,
) -> GateInputs:
    """Everything `decide_promotion` needs, computed on the current frozen test split.

    The baselines are fitted on what the challenger was fitted on: train + validation
    (models/candidate_choice.py refits the chosen candidate on both), or, when that is larger than
    `baseline_budget.max_examples` (default: TRAIN_SELECTION_MAX_EXAMPLES), on its seeded
    per-intent sample of that size. They are a floor a first model must clear, not the
    product: a sample keeps their cost bounded at any data size (at 1M messages the refit on
    ~400k rows took most of `model_promotion`'s 744 s), and the challenger is scored on the
    same whole test split either way.
    """
    budget = baseline_budget or SelectionBudget()
    test = examples[examples["split"] == TEST]
    feedback = examples[examples["split"] == FEEDBACK]
    train = examples[~examples["split"].isin([TEST, FEEDBACK])]
    behavioural = run_behavioural_suite(
        _predict_utterances(challenger),
        list(challenger.classes_),
        load_functionality(functionality_path),
        invariance_cases(test),
    )
    return GateInputs(
        challenger=score_model(challenger, challenger_version, test, feedback),
        champion=score_model(champion, str(champion_version), test, feedback) if champion else None,
        rules=rules,
        intent_support={str(k): int(n) for k, n in test["intent"].value_counts().items()},
        feedback_labels=len(feedback),
        behavioural=behavioural,
        data_quality=check_training_data(train, max_text_chars),
        baselines=score_baselines(train, test, budget.max_examples, budget.seed),
        new_intents=_new_intents(challenger, champion),
    )


def _new_intents(challenger: Any, champion: Any | None) -> tuple[str, ...]:
    """Intents the challenger answers that the champion never learnt (none without a champion)."""
    if champion is None:
        return ()
    return tuple(sorted(set(map(str, challenger.classes_)) - set(map(str, champion.classes_))))

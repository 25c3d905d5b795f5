"""Gathering the gate's inputs: scores of both models, behavioural tests, data quality."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd
from sklearn.metrics import accuracy_score, f1_score

from conversations.schema import LabelSource
from models.behavioural import load_functionality, run_behavioural_suite
from models.data_quality import check_training_data
from models.evaluation import predict_labelled, summary_metrics
from models.promotion import GateInputs, ModelScore, PromotionRules
from models.training import model_input

FUNCTIONALITY_PATH = (
    Path(__file__).resolve().parents[1] / "data" / "behavioral" / ("minimum_functionality.yaml")
)
FEEDBACK_SOURCES = (LabelSource.FEEDBACK.value, LabelSource.AGENT.value)
INVARIANCE_SAMPLE = 300


def score_model(pipeline: Any, version: str, test: pd.DataFrame) -> ModelScore:
    """Accuracy, macro-F1, per-intent F1 and recent-feedback accuracy on the frozen test split."""
    predictions, _ = predict_labelled(pipeline, model_input(test), test["intent"])
    metrics = summary_metrics(predictions)
    intents = sorted(set(test["intent"]))
    per_intent = f1_score(
        predictions.true, predictions.predicted, labels=intents, average=None, zero_division=0
    )
    feedback = (test["label_source"].isin(FEEDBACK_SOURCES)).to_numpy()
    feedback_accuracy = (
        float(accuracy_score(predictions.true[feedback], predictions.predicted[feedback]))
        if feedback.any()
        else None
    )
    return ModelScore(
        version,
        metrics["accuracy"],
        metrics["macro_f1"],
        {intent: round(float(f1), 4) for intent, f1 in zip(intents, per_intent, strict=True)},
        feedback_accuracy,
    )


def _predict_texts(pipeline: Any) -> Any:
    def predict(texts: list[str]) -> list[str]:
        frame = pd.DataFrame({"text": texts, "context": ["{}"] * len(texts)})
        return list(pipeline.predict(model_input(frame)))

    return predict


def gate_inputs(
    challenger: Any,
    challenger_version: str,
    champion: Any | None,
    champion_version: str | None,
    examples: pd.DataFrame,
    rules: PromotionRules,
    max_text_chars: int,
    functionality_path: Path = FUNCTIONALITY_PATH,
) -> GateInputs:
    """Everything `decide_promotion` needs, computed on the current frozen test split."""
    test = examples[examples["split"] == "test"]
    train = examples[examples["split"] != "test"]
    invariance_texts = (
        test["text"].sample(min(INVARIANCE_SAMPLE, len(test)), random_state=0).tolist()
    )
    behavioural = run_behavioural_suite(
        _predict_texts(challenger),
        list(challenger.classes_),
        load_functionality(functionality_path),
        invariance_texts,
    )
    return GateInputs(
        challenger=score_model(challenger, challenger_version, test),
        champion=score_model(champion, str(champion_version), test) if champion else None,
        rules=rules,
        intent_support=test["intent"].value_counts().to_dict(),
        feedback_labels=int(test["label_source"].isin(FEEDBACK_SOURCES).sum()),
        behavioural=behavioural,
        data_quality=check_training_data(train, max_text_chars),
    )

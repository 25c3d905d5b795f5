"""Turning validated conversations into labelled training examples."""

from __future__ import annotations

import pandas as pd

from conversations.schema import LabelSource, Speaker, normalise_text
from models.splits import assign_splits

# Later label sources override earlier ones for the same text, then the newest label wins.
LABEL_PRECEDENCE = {
    LabelSource.SEED.value: 0,
    LabelSource.FEEDBACK.value: 1,
    LabelSource.AGENT.value: 2,
}
EXAMPLE_COLUMNS = ("message_id", "text", "context", "ts", "intent", "label_source", "split")


def labelled_customer_turns(conversations: pd.DataFrame) -> pd.DataFrame:
    """One example per distinct customer utterance: its latest label (feedback/agent over seed)."""
    labelled = conversations[
        (conversations["speaker"] == Speaker.CUSTOMER.value) & conversations["intent"].notna()
    ].copy()
    labelled["text_key"] = labelled["text"].astype(str).map(normalise_text)
    labelled["precedence"] = labelled["label_source"].map(LABEL_PRECEDENCE).fillna(0)
    labelled["order_ts"] = labelled["ts"].fillna(pd.Timestamp(0, tz="UTC"))
    labelled["position"] = range(len(labelled))
    latest = (
        labelled.sort_values(["text_key", "precedence", "order_ts", "position"])
        .groupby("text_key", sort=False)
        .tail(1)
        .sort_values("position")
    )
    return latest.drop(columns=["text_key", "precedence", "order_ts", "position"])


def build_training_examples(
    conversations: pd.DataFrame,
    test_fraction: float,
    validation_fraction: float,
    seed: int,
) -> pd.DataFrame:
    """Labelled customer turns with a frozen-test / stratified-validation split column."""
    examples = labelled_customer_turns(conversations).reset_index(drop=True)
    examples["text"] = examples["text"].astype(str)
    examples["intent"] = examples["intent"].astype(str)
    examples["split"] = assign_splits(
        examples["text"].tolist(),
        examples["intent"].tolist(),
        test_fraction=test_fraction,
        validation_fraction=validation_fraction,
        seed=seed,
    )
    return examples.loc[:, list(EXAMPLE_COLUMNS)]

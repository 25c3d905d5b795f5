"""The drift demo's story in small: agents teach the model an intent, the gate credits it.

The champion never saw `lost_phone`; customers ask about it, agents label those stored messages
(trust `agent`). Labels on test-split texts form the `feedback` split, the rest are trained on,
and the frozen test split (curated truth only) has no `lost_phone` at all. On separable data
both models are perfect on that test split, so only the feedback split shows what the
challenger learnt: it must become champion, and a retrain that learnt nothing must not.
"""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import pytest

from models.candidates import resolve
from models.examples import build_training_examples
from models.gate import gate_inputs
from models.gate_records import PromotionRules
from models.promotion import decide_promotion
from models.splits import FEEDBACK, TEST
from models.training import train_intent_model

WORDS = {
    "card_arrival": (
        ["where is", "still waiting for", "when will I get"],
        ["my new card", "the card"],
    ),
    "exchange_rate": (["what is", "how good is", "tell me"], ["the exchange rate", "your fx rate"]),
    "top_up_failed": (["why did", "help,", "my"], ["top up fail", "top-up was declined"]),
    "lost_phone": (["I lost", "someone stole", "I can't find"], ["my phone", "my mobile"]),
}
ENDINGS = ["", " today", " please", " again", " now", " this week", " at all", " yet", " sadly"]
NEW_INTENT = "lost_phone"


def utterances(intent: str) -> list[str]:
    """Distinct phrasings of one intent, each intent with words of its own."""
    starts, objects = WORDS[intent]
    return [f"{s} {o}{e}" for s, o, e in itertools.product(starts, objects, ENDINGS)]


def seed_rows() -> pd.DataFrame:
    """The labelled data set the champion learns from: every intent but the new one."""
    rows = [
        (text, intent) for intent in WORDS if intent != NEW_INTENT for text in utterances(intent)
    ]
    return pd.DataFrame(
        {
            "message_id": [f"seed-{i}" for i in range(len(rows))],
            "conversation_id": [f"seed-{i}" for i in range(len(rows))],
            "turn": 0,
            "ts": pd.Series(pd.NaT, index=range(len(rows)), dtype="datetime64[ns, UTC]"),
            "speaker": "customer",
            "text": [text for text, _ in rows],
            "intent": [intent for _, intent in rows],
            "label_source": "seed",
            "label_trust": "curated",
            "context": "{}",
        }
    )


def agent_labelled_messages() -> pd.DataFrame:
    """Stored customer messages about the new intent, each labelled by an agent."""
    texts = utterances(NEW_INTENT)
    return pd.DataFrame(
        {
            "message_id": [f"msg-{i}" for i in range(len(texts))],
            "conversation_id": [f"room-{i}" for i in range(len(texts))],
            "turn": 0,
            "ts": pd.Timestamp(datetime(2026, 11, 30, 7, tzinfo=UTC)),
            "speaker": "customer",
            "text": texts,
            "intent": NEW_INTENT,
            "label_source": "agent",
            "label_trust": "agent",
            "context": '{"session": {"message_count": 0}}',
        }
    )


def fit(examples: pd.DataFrame) -> Any:
    """The fast candidate fitted on the examples' train split, as the demo trains."""
    train, validation, test = (
        examples[examples["split"] == s] for s in ("train", "validation", TEST)
    )
    return train_intent_model(resolve(["tfidf_logreg"]), train, validation, test).pipeline


@pytest.mark.slow
def test_a_challenger_taught_a_new_intent_by_agents_becomes_champion() -> None:
    def examples_of(frame: pd.DataFrame) -> pd.DataFrame:
        return build_training_examples(frame, test_fraction=0.2, validation_fraction=0.1, seed=0)

    champion = fit(examples_of(seed_rows()))
    examples = examples_of(pd.concat([seed_rows(), agent_labelled_messages()], ignore_index=True))
    taught = examples[examples["intent"] == NEW_INTENT]
    assert set(taught["split"]) == {"train", "validation", FEEDBACK}, taught["split"].value_counts()
    assert NEW_INTENT not in set(examples.loc[examples["split"] == TEST, "intent"])
    challenger = fit(examples)
    assert NEW_INTENT in challenger.classes_

    rules = PromotionRules(min_feedback_labels=3)
    inputs = gate_inputs(challenger, "2", champion, "1", examples, rules, 2000)
    assert inputs.new_intents == (NEW_INTENT,)  # from the two pipelines' classes
    decision = decide_promotion(inputs)
    checks = {c.name: c for c in decision.checks}
    assert decision.passed, decision.to_dict()
    assert "gain +0.0000" in checks["beats_champion"].reason  # a tie on the frozen test split
    assert "feedback 1.0000 vs 0.0000" in checks["beats_champion"].reason
    assert f"since taught {NEW_INTENT}" in checks["beats_champion"].reason

    # The champion retrained on its own data learnt nothing new: a tie that never promotes.
    same = decide_promotion(gate_inputs(champion, "2", champion, "1", examples, rules, 2000))
    assert not {c.name: c for c in same.checks}["beats_champion"].passed

"""Which label each example takes, and which split a label may reach (models/examples.py)."""

from __future__ import annotations

import pandas as pd

from models.examples import build_training_examples, labelled_customer_turns
from models.splits import text_bucket

TEST_FRACTION = 0.2


def _texts(in_test: bool, count: int) -> list[str]:
    """Distinct texts that the frozen split puts in test (or keeps out of it)."""
    found, n = [], 0
    while len(found) < count:
        text = f"where is my card number {n}"
        if (text_bucket(text) < TEST_FRACTION) == in_test:
            found.append(text)
        n += 1
    return found


def _rows(*rows: tuple[str, str, str, str | None, str | None]) -> pd.DataFrame:
    """Customer turns from (message_id, text, intent, label_source, label_trust), oldest first."""
    ts = pd.to_datetime
    return pd.DataFrame(
        {
            "message_id": [row[0] for row in rows],
            "speaker": "customer",
            "text": [row[1] for row in rows],
            "intent": [row[2] for row in rows],
            "label_source": [row[3] for row in rows],
            "label_trust": [row[4] for row in rows],
            "ts": [ts("2026-11-01", utc=True) + pd.Timedelta(hours=i) for i in range(len(rows))],
            "context": "{}",
        }
    )


def test_on_training_texts_agent_labels_override_seed_and_the_newest_wins():
    train_text = _texts(False, 1)[0]
    conversations = _rows(
        ("a", train_text, "card_arrival", "seed", "curated"),
        ("b", train_text.upper(), "card_delivery_estimate", "agent", "agent"),
        ("c", f"  {train_text} ", "lost_or_stolen_card", "feedback", "service"),
    )
    examples = labelled_customer_turns(conversations, TEST_FRACTION)
    assert examples[["message_id", "intent"]].values.tolist() == [["b", "card_delivery_estimate"]]
    assert examples["split"].isna().all()  # train/validation is assigned afterwards


def test_test_split_truth_comes_only_from_curated_or_reviewed_labels():
    test_text, reviewed_text = _texts(True, 2)
    conversations = _rows(
        ("seed", test_text, "card_arrival", "seed", "curated"),
        ("svc", test_text, "terminate_account", "feedback", "service"),
        ("svc2", test_text, "terminate_account", "feedback", "service"),
        ("old", test_text, "terminate_account", "feedback", "unverified"),
        ("agent", test_text, "card_delivery_estimate", "agent", "agent"),
        ("seed2", reviewed_text, "card_arrival", "seed", "curated"),
        ("rev", reviewed_text, "card_linking", "feedback", "reviewed"),
    )
    examples = build_training_examples(conversations, TEST_FRACTION, 0.1, 0)
    by_split = {
        split: dict(zip(frame["text"], frame["intent"], strict=True))
        for split, frame in examples.groupby("split")
    }
    # The seed label stays the truth, an operator's review replaces it, and the agent's label
    # is held out in the feedback split: service and unverified labels reach no split at all.
    assert by_split["test"] == {test_text: "card_arrival", reviewed_text: "card_linking"}
    assert by_split["feedback"] == {test_text: "card_delivery_estimate"}
    assert set(by_split) == {"test", "feedback"}


def test_unverified_labels_never_train_and_new_texts_split_as_before():
    train_texts = _texts(False, 30)
    conversations = _rows(
        *[
            (f"s{i}", text, f"intent_{i % 3}", "seed", "curated")
            for i, text in enumerate(train_texts)
        ],
        ("old", train_texts[0], "terminate_account", "feedback", "unverified"),
    )
    examples = build_training_examples(conversations, TEST_FRACTION, 0.1, 0)
    assert "terminate_account" not in set(examples["intent"])
    assert set(examples["split"]) == {"train", "validation"}
    assert len(examples) == len(train_texts)

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


def _dialogue(conversation: str, turns: list[tuple[str, str, str | None]]) -> pd.DataFrame:
    """One conversation's turns from (speaker, text, intent); customer labels are seed labels."""
    start = pd.Timestamp("2026-11-01", tz="UTC")
    return pd.DataFrame(
        {
            "message_id": [f"{conversation}-{turn}" for turn in range(len(turns))],
            "conversation_id": conversation,
            "turn": range(len(turns)),
            "speaker": [speaker for speaker, _, _ in turns],
            "text": [text for _, text, _ in turns],
            "intent": [intent for _, _, intent in turns],
            "label_source": ["seed" if intent else None for _, _, intent in turns],
            "label_trust": ["curated" if intent else None for _, _, intent in turns],
            "ts": [start + pd.Timedelta(minutes=turn) for turn in range(len(turns))],
            "context": "{}",
        }
    )


def _offer(conversation: str, offer: str, intent: str, answer: str = "yes please"):
    return _dialogue(
        conversation,
        [
            ("customer", f"hello, question {conversation}", "greet"),
            ("bot", offer, None),
            ("customer", answer, intent),
        ],
    )


def test_equal_words_in_different_conversations_keep_their_own_intents():
    conversations = pd.concat(
        [
            _offer("c1", "Shall I block your card?", "block_card"),
            _offer("c2", "Shall I send a new card?", "order_card"),
            _offer("c3", "Shall I send a new card?", "order_card", answer="Yes  PLEASE"),
        ],
        ignore_index=True,
    )
    examples = build_training_examples(conversations, TEST_FRACTION, 0.1, 0)
    answers = examples[examples["text"].str.casefold().str.contains("yes")]
    assert sorted(zip(answers["message_id"], answers["intent"], strict=True)) == [
        ("c1-2", "block_card"),
        ("c2-2", "order_card"),
        ("c3-2", "order_card"),
    ]
    assert answers["split"].nunique() == 1  # one text, one split: no leak between splits


def test_a_text_only_label_relabels_standalone_utterances_not_conversation_turns():
    seed = _rows(("csv-1", "yes please", "affirm", "seed", "curated"))
    correction = _rows(("label-1", "YES please", "order_card", "agent", "agent"))
    standalone = pd.concat([seed, correction], ignore_index=True)
    standalone["conversation_id"] = standalone["message_id"]  # each its own conversation
    turn = _offer("c1", "Shall I block your card?", "block_card")
    examples = labelled_customer_turns(
        pd.concat([standalone, turn], ignore_index=True), TEST_FRACTION
    )
    answers = examples[examples["text"].str.casefold() == "yes please"]
    # The agent's correction wins over the seed utterance it repeats (the same utterance);
    # the conversation's turn is another message and keeps its own label.
    assert sorted(zip(answers["message_id"], answers["intent"], strict=True)) == [
        ("c1-2", "block_card"),
        ("label-1", "order_card"),
    ]


def test_every_example_of_a_text_is_in_one_split_and_test_texts_never_train():
    offers = [
        _offer(f"c{n}", "Anything else?", f"intent_{n % 4}", answer=f"yes please {n % 25}")
        for n in range(200)
    ]
    examples = build_training_examples(pd.concat(offers, ignore_index=True), 0.2, 0.1, 0)
    assert len(examples) == 400  # every labelled customer turn is an example
    keys = examples["text"].str.casefold()
    assert (examples.groupby(keys)["split"].nunique() == 1).all()
    assert set(examples["split"]) == {"train", "validation", "test"}
    in_test = set(keys[examples["split"] == "test"])
    assert in_test.isdisjoint(set(keys[examples["split"] != "test"]))
    assert all((text_bucket(text) < 0.2) == (text in in_test) for text in set(keys))


def test_a_declared_test_file_is_the_whole_test_split_and_the_rest_all_trains():
    """`make evaluate`'s split: the official test file is test whole (texts another file repeats
    included), and with no test drawn by hash every other text is train or validation."""
    kept, hashed = _texts(False, 30), _texts(True, 10)
    rows = _rows(
        *[(f"t{i}", text, f"intent_{i % 3}", "seed", "curated") for i, text in enumerate(kept)],
        *[(f"h{i}", text, f"intent_{i % 3}", "seed", "curated") for i, text in enumerate(hashed)],
    ).assign(source=["data/train.csv"] * 40)
    official = _rows(
        ("o1", kept[0], "intent_0", "seed", "curated"),  # a train.csv text repeated in test.csv
        ("o2", "a text only the test file has", "intent_1", "seed", "curated"),
    ).assign(source="official_test/test.csv")
    conversations = pd.concat([rows, official], ignore_index=True)
    examples = build_training_examples(
        conversations, 0.0, 0.1, 0, test_sources=frozenset({"official_test/test.csv"})
    )
    test = examples[examples["split"] == "test"]
    assert sorted(test["text"]) == sorted([kept[0], "a text only the test file has"])
    rest = examples[examples["split"] != "test"]
    assert set(rest["split"]) == {"train", "validation"}
    # Texts the hash would have put in test train here; the repeated text never trains.
    assert set(hashed) <= set(rest["text"]) and kept[0] not in set(rest["text"])
    assert len(rest) == 39

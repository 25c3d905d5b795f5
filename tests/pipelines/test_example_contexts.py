"""Filled contexts kept per conversation between training runs (pipelines/example_contexts.py)."""

from __future__ import annotations

import pandas as pd
import pytest
from upath import UPath

from features.dialogue import conversation_contexts
from models.examples import build_training_examples
from pipelines.example_contexts import ContextStore, filled_contexts
from pipelines.example_inputs import InputRows

AGREE = "yes please"


def _conversation(cid: str, opening: str, intent: str, answer: str) -> list[dict]:
    """Customer need, bot offer, customer agreeing: the answer's context names the need."""
    ts = pd.Timestamp("2026-11-01", tz="UTC") + pd.Timedelta(minutes=len(cid))
    turns = [
        ("customer", opening, intent),
        ("bot", f"shall I act on {intent}?", None),
        ("customer", AGREE, answer),
    ]
    return [
        {
            "message_id": f"{cid}-{n}",
            "conversation_id": cid,
            "turn": n,
            "ts": ts + pd.Timedelta(seconds=n),
            "speaker": speaker,
            "text": text,
            "intent": label,
            "label_source": "seed" if label else None,
            "label_trust": "curated" if label else None,
            "context": "{}",
        }
        for n, (speaker, text, label) in enumerate(turns)
    ]


def _frame(*conversations: list[dict]) -> pd.DataFrame:
    return pd.DataFrame([row for rows in conversations for row in rows])


A = _conversation("a", "i lost my card", "report_lost_card", "confirm_block")
B = _conversation("b", "refund the shoes", "request_refund", "confirm_refund")
C = _conversation("c", "my card is worn out", "order_replacement", "confirm_replacement")


def _labelled(frame: pd.DataFrame) -> pd.Series:
    return (frame["speaker"] == "customer") & frame["intent"].notna()


def _fill(frame: pd.DataFrame, store: ContextStore) -> tuple[pd.Series, object]:
    return filled_contexts(frame, InputRows.of(frame), store)


@pytest.fixture
def store(tmp_path) -> ContextStore:
    return ContextStore(UPath(tmp_path))


def test_only_changed_and_new_conversations_are_filled_again(store):
    _fill(_frame(A, B, C), store)
    # Mark what was kept for conversation a: a reused context shows the mark, a filled one not.
    kept = pd.read_parquet(store.path())
    kept.loc[kept["message_id"] == "a-2", "context"] = "kept"
    kept.to_parquet(store.path(), index=False)
    b_later = [*B, {**B[1], "message_id": "b-3", "turn": 3, "text": "done"}]
    d = _conversation("d", "where is my card", "card_arrival", "confirm_tracking")
    after = _frame(A, b_later, C, d)

    contexts, reuse = _fill(after, store)

    assert (reuse.filled, reuse.reused, reuse.reason) == (2, 2, "")  # b and d; a and c
    labelled = _labelled(after).to_numpy()
    expected = conversation_contexts(after)[labelled]
    got = contexts[labelled]
    assert got[after.loc[labelled, "message_id"] == "a-2"].tolist() == ["kept"]
    others = (after.loc[labelled, "message_id"] != "a-2").to_numpy()
    assert got[others].tolist() == expected[others].tolist()
    assert "report_lost_card" not in got[(after.loc[labelled, "message_id"] == "b-2").to_numpy()]


def test_a_changed_turn_fills_its_conversation_again_and_examples_equal_a_fresh_build(store):
    _fill(_frame(A, B), store)
    relabelled = [dict(row) for row in A]
    relabelled[0]["intent"] = "card_swallowed"  # the first turn: the answer's context changes
    after = _frame(relabelled, B)

    contexts, reuse = _fill(after, store)

    assert (reuse.filled, reuse.reused) == (1, 1)
    fresh = build_training_examples(after, 0.2, 0.1, 0)
    pd.testing.assert_frame_equal(build_training_examples(after, 0.2, 0.1, 0, contexts), fresh)
    assert "card_swallowed" in fresh.set_index("message_id").loc["a-2", "context"]


def test_the_same_rows_in_another_order_fill_again(store):
    frame = _frame(A, B)
    _fill(frame, store)
    swapped = frame.iloc[[1, 0, 2, 3, 4, 5]].reset_index(drop=True)

    _, reuse = _fill(swapped, store)

    assert (reuse.filled, reuse.reused) == (1, 1)


def test_nothing_kept_an_unreadable_file_or_repeated_ids_fill_everything(store):
    frame = _frame(A, B)
    _, first = _fill(frame, store)
    store.path().write_bytes(b"not parquet")
    _, torn = _fill(frame, store)
    _, repeated = _fill(pd.concat([frame, frame.iloc[[0]]], ignore_index=True), store)

    assert (first.filled, first.reused) == (2, 0) and "no contexts kept" in first.reason
    assert (torn.filled, torn.reused) == (2, 0)
    assert repeated.reason == "repeated ids"


def test_a_frame_without_dialogue_columns_keeps_its_contexts(store):
    utterances = pd.DataFrame([A[0]]).drop(columns=["conversation_id", "turn"])

    contexts, reuse = _fill(utterances, store)

    assert contexts is None and reuse.reason == "no dialogue columns"
    assert len(build_training_examples(utterances, 0.2, 0.1, 0, contexts)) == 1


def test_no_input_rows_fill_nothing_and_keep_nothing(store):
    unlabelled = _frame(A).assign(intent=None)

    contexts, reuse = _fill(unlabelled, store)

    assert (reuse.filled, reuse.reused) == (0, 0)
    assert contexts.tolist() == unlabelled["context"].tolist()

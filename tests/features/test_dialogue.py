"""Conversation context as features: what came before a turn, read in one place.

The same generated dialogues as the end-to-end test (tests/dialogues.py): "yes please" agrees to
whatever the bot offered, so only the context tells its intent.
"""

from __future__ import annotations

import json

import pandas as pd

from features.dialogue import (
    MAX_PREVIOUS_INTENTS,
    DialogueTokens,
    conversation_contexts,
    dialogue_document,
    dialogue_state,
)
from models.candidate_choice import fit_and_select
from models.candidates import resolve
from models.examples import build_training_examples
from models.fallback import FallbackPolicy
from models.inference import IntentInference
from models.inputs import model_input
from serving.inputs import CONTEXT_MAX_BYTES
from tests.dialogues import AGREEMENTS, write_dialogues


def _conversations(tmp_path, conversations: int) -> pd.DataFrame:
    """The generated JSONL as the validated conversations frame (context as JSON text)."""
    path = tmp_path / "dialogues.jsonl"
    write_dialogues(path, conversations=conversations)
    rows = [json.loads(line) for line in path.read_text("utf-8").splitlines()]
    frame = pd.DataFrame(rows)
    frame["context"] = frame["context"].map(lambda c: json.dumps(c, sort_keys=True))
    frame["ts"] = pd.to_datetime(frame["ts"], utc=True)
    frame["label_trust"] = frame["intent"].map(lambda i: "curated" if isinstance(i, str) else None)
    return frame


def test_a_turn_gets_the_intents_and_the_bot_message_before_it(tmp_path):
    frame = _conversations(tmp_path, 3)
    contexts = conversation_contexts(frame)
    answer = frame.index[(frame["conversation_id"] == "conv-00000") & (frame["turn"] == 2)][0]
    state = dialogue_state(contexts[answer])
    opening, offer = frame.loc[answer - 2, "intent"], frame.loc[answer - 1, "text"]
    assert state.previous_intents == (opening,)
    assert state.previous_bot_message == offer and state.turn == 2
    first = frame.index[(frame["conversation_id"] == "conv-00000") & (frame["turn"] == 0)][0]
    assert contexts[first] == frame.loc[first, "context"]  # nothing before it: unchanged


def test_keys_a_row_already_has_are_kept():
    frame = pd.DataFrame(
        {
            "conversation_id": ["c", "c", "c"],
            "turn": [0, 1, 2],
            "speaker": ["customer", "bot", "customer"],
            "text": ["lost card", "Block it?", "yes"],
            "intent": ["lost_card", None, "confirm"],
            "context": ["{}", "{}", '{"session": {"previous_bot_message": "told by the client"}}'],
        }
    )
    state = dialogue_state(conversation_contexts(frame)[2])
    assert state.previous_bot_message == "told by the client"
    assert state.previous_intents == ("lost_card",)


def test_a_message_without_context_is_one_constant_token():
    assert dialogue_document("yes please", dialogue_state(None)) == "turn:0"
    assert DialogueTokens().transform(pd.DataFrame({"text": ["hi"], "context": ["{}"]})) == [
        "turn:0"
    ]


def test_the_context_candidate_wins_on_dialogues_and_serves_the_same_context(tmp_path):
    examples = build_training_examples(_conversations(tmp_path, 400), 0.2, 0.1, seed=0)
    train, validation, test = (
        examples[examples["split"] == s] for s in ("train", "validation", "test")
    )
    chosen, pipeline, selection = fit_and_select(
        resolve(["tfidf_logreg", "tfidf_logreg_dialogue"]), train, validation
    )
    scores = {r.name: r.validation["accuracy"] for r in selection.candidates}
    assert chosen.name == "tfidf_logreg_dialogue"
    assert scores["tfidf_logreg_dialogue"] > scores["tfidf_logreg"] + 0.1
    answers = test[test["intent"].isin(AGREEMENTS)]
    right = pipeline.predict(model_input(answers)) == answers["intent"].to_numpy()
    assert right.mean() > 0.9
    # Serving: the same words, told what came before through /predict's `context` object.
    inference = IntentInference(pipeline, FallbackPolicy(threshold=0.0, margin=0.0))
    first = examples.drop_duplicates("intent").set_index("intent")
    contexts = [json.loads(first.loc[agree, "context"]) for agree in AGREEMENTS]
    predicted = inference.predict(["yes please"] * len(contexts), contexts)
    assert [p.intent for p in predicted] == list(AGREEMENTS)


def test_on_single_utterances_the_context_candidate_is_not_fitted():
    rows = [("where is my card", "card_arrival"), ("refund me", "refund")] * 6
    frame = pd.DataFrame(
        {"text": [f"{t} {i}" for i, (t, _) in enumerate(rows)], "context": ["{}"] * 12,
         "intent": [intent for _, intent in rows]}
    )  # fmt: skip
    chosen, _, selection = fit_and_select(
        resolve(["tfidf_logreg", "tfidf_logreg_dialogue"]), frame, frame
    )
    assert chosen.name == "tfidf_logreg"
    assert [s.name for s in selection.skipped] == ["tfidf_logreg_dialogue"]
    assert "no training example has conversation context" in selection.skipped[0].reason


def test_a_long_conversation_s_context_keeps_the_newest_intents_and_fits_predict():
    turns = 400
    frame = pd.DataFrame(
        {
            "conversation_id": ["c"] * turns,
            "turn": range(turns),
            "speaker": ["customer", "bot"] * (turns // 2),
            "text": [f"message {n}" for n in range(turns)],
            "intent": [f"some_rather_long_intent_name_{n}" if n % 2 == 0 else None
                       for n in range(turns)],
            "context": ["{}"] * turns,
        }
    )  # fmt: skip
    last = conversation_contexts(frame)[turns - 2]
    intents = dialogue_state(last).previous_intents
    assert len(intents) == MAX_PREVIOUS_INTENTS
    assert intents[-1] == f"some_rather_long_intent_name_{turns - 4}"
    assert len(last.encode()) <= CONTEXT_MAX_BYTES

"""The chat tier asks the model with the context training builds for the same stored turn.

A real dialogue model (tfidf_logreg_dialogue, trained on tests/dialogues.py) behind the hub
in-process (Starlette's test client, SQLite store): "yes please" agrees to what the customer's
own conversation was about, and the context the bot sent for each turn is the one the pipeline's
own code (store reader, validation, training examples) builds from the store afterwards.
"""

from __future__ import annotations

import contextlib
import json
from pathlib import Path
from typing import Any

import pytest
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient

from conversations.readers import read_conversation_store
from conversations.validation import validate_messages
from models.examples import build_training_examples
from models.fallback import FallbackPolicy
from models.inference import IntentInference
from serving.chat.history import turn_context
from serving.chat.hub import ChatHub
from serving.chat.settings import ChatSettings
from serving.chat.store import ChatStore
from tests.serving.chat.conftest import predicted_intent, token
from tests.serving.chat.dialogue_model import (
    AGREED,
    OPENINGS,
    dialogue_catalogue,
    dialogue_examples,
    train_dialogue_model,
)
from tests.serving.chat.test_hub import receive_until
from tests.serving.conftest import CHAT_SECRET


class RecordingModel:
    """A real fitted dialogue model as the chat tier's classify; keeps what it was asked."""

    def __init__(self, pipeline: Any) -> None:
        self.inference = IntentInference(pipeline, FallbackPolicy(threshold=0.0, margin=0.0))
        self.asked: list[tuple[str, dict[str, Any] | None]] = []

    async def __call__(self, text: str, context: dict[str, Any] | None) -> dict[str, Any]:
        self.asked.append((text, context))
        document = self.inference.predict_documents([text], [context])[0]
        return {**document, "model": {"name": "intent-classifier", "version": "1"}}


@pytest.fixture(scope="module")
def dialogue_pipeline(tmp_path_factory: pytest.TempPathFactory) -> Any:
    examples = dialogue_examples(tmp_path_factory.mktemp("dialogues"))
    return train_dialogue_model(examples).pipeline


def _app(store_url: str, model: RecordingModel) -> Starlette:
    folder = Path(store_url.removeprefix("sqlite:///")).parent
    settings = ChatSettings(
        jwt_secret=CHAT_SECRET, store_url=store_url, responses_path=dialogue_catalogue(folder)
    )
    hub = ChatHub(settings, model)

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):  # type: ignore[no-untyped-def]
        await hub.start()
        yield
        await hub.close()

    return Starlette(routes=[WebSocketRoute("/ws", hub.serve)], lifespan=lifespan)


def _say(socket: Any, text: str, number: int) -> tuple[str, dict[str, Any]]:
    """Send a customer message; its stored id and the bot's reply to it."""
    socket.send_text(
        json.dumps(
            {"type": "chat_message", "data": {"content": text, "client_msg_id": str(number)}}
        )
    )
    message_id = receive_until(socket, "ack")["message_id"]
    return message_id, receive_until(socket, "bot_reply")


def _pipeline_contexts(store_url: str) -> dict[str, dict[str, Any]]:
    """Per labelled stored customer turn, the context training builds for it."""
    kept = validate_messages(read_conversation_store(store_url), 2000).kept
    examples = build_training_examples(kept, test_fraction=0.2, validation_fraction=0.1, seed=0)
    return {
        str(m): json.loads(c) if isinstance(c, str) else {}
        for m, c in zip(examples["message_id"], examples["context"], strict=True)
    }


def test_yes_please_is_classified_in_its_conversation_with_the_training_context(
    tmp_path: Path, dialogue_pipeline: Any
) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    model = RecordingModel(dialogue_pipeline)
    turns: dict[str, list[tuple[str, dict[str, Any]]]] = {}
    with TestClient(_app(store_url, model)) as client:
        for name, opening in OPENINGS.items():
            with client.websocket_connect(f"/ws?token={token(f'dia-{name}')}") as customer:
                receive_until(customer, "welcome")
                turns[name] = [_say(customer, opening, 1), _say(customer, "yes please", 2)]

    # What the model said of each turn is in the store (customers' frames do not carry it).
    intent = {m: predicted_intent(store_url, m) for pair in turns.values() for m, _ in pair}
    opened = {name: intent[turns[name][0][0]] for name in OPENINGS}
    agreed = {name: intent[turns[name][1][0]] for name in OPENINGS}
    assert opened == {"lost": "report_lost_card", "refund": "request_refund"}
    assert agreed == AGREED

    sent = dict(zip([m for pair in turns.values() for m, _ in pair], model.asked, strict=True))
    answer_id = turns["lost"][1][0]
    session = sent[answer_id][1]["session"]  # type: ignore[index]
    # Every earlier message counts (the customer's opening and the bot's reply), as stored rows.
    assert session["message_count"] == 2
    assert session["previous_intents"] == ["report_lost_card"]
    assert session["previous_bot_message"] == turns["lost"][0][1]["content"]

    # An agent confirms each turn's intent; training then reads the store.
    store = ChatStore(store_url)
    try:
        for pair in turns.values():
            for message_id, _ in pair:
                store.record_label(message_id, intent[message_id], "agent-1", "")
        built = _pipeline_contexts(store_url)
        assert set(built) == set(sent)
        for message_id, (_, context) in sent.items():
            assert context == built[message_id]
            assert turn_context(store.engine, message_id) == built[message_id]
    finally:
        store.close()


def test_an_earlier_turn_s_label_wins_over_its_prediction(
    tmp_path: Path, dialogue_pipeline: Any
) -> None:
    store_url = f"sqlite:///{tmp_path / 'store.db'}"
    with (
        TestClient(_app(store_url, RecordingModel(dialogue_pipeline))) as client,
        client.websocket_connect(f"/ws?token={token('dia-relabel')}") as customer,
    ):
        receive_until(customer, "welcome")
        opening, _ = _say(customer, OPENINGS["lost"], 1)
        answer, _ = _say(customer, "yes please", 2)
    store = ChatStore(store_url)
    try:
        store.record_label(opening, "order_replacement", "agent-1", OPENINGS["lost"])
        store.record_label(answer, "confirm_replacement", "agent-1", "yes please")
        context = turn_context(store.engine, answer)
        assert context["session"]["previous_intents"] == ["order_replacement"]
        assert _pipeline_contexts(store_url)[answer] == context
    finally:
        store.close()

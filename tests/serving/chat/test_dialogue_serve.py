"""Over a real `bentoml serve`: with a context-aware champion, "yes please" means what was offered.

The champion is `tfidf_logreg_dialogue` trained on tests/dialogues.py and registered in its own
MLflow registry; the bot's catalogue says what that corpus's bot says. Two customers ask for two
different things, the bot offers each its own action, both answer "yes please".
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest

from models.registry import IntentRegistry, RegistryConfig
from models.tracking import log_and_register
from serving.chat.client import ChatClient
from tests.serving.chat.conftest import predicted_intent, run, token, unique_user
from tests.serving.chat.dialogue_model import (
    AGREED,
    OPENINGS,
    dialogue_catalogue,
    dialogue_examples,
    train_dialogue_model,
)
from tests.serving.conftest import ServiceProcess, service_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def dialogue_service(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServiceProcess]:
    root = tmp_path_factory.mktemp("dialogue_serving")
    examples = dialogue_examples(root)
    config = RegistryConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    registry = IntentRegistry(config)
    version = log_and_register(
        train_dialogue_model(examples),
        registry,
        "dialogue-serving-tests",
        str(root / "artifacts"),
        f"fp-{time.time_ns()}",
        {},
        {},
        reference=examples[examples["split"].isin(["train", "test"])],
    )
    registry.promote(str(version.version))
    env = service_env(
        {"root": root, "config": config},
        CHAT_RESPONSES_PATH=str(dialogue_catalogue(root)),
    )
    process = ServiceProcess(env)
    process.start()
    yield process
    process.stop()


async def _conversation(service: ServiceProcess, opening: str) -> tuple[str, str]:
    """The intents the served bot gave the opening and the "yes please" after its offer."""
    async with ChatClient.connect(service.ws_url, token(unique_user("dialogue"))) as customer:
        await customer.say(opening)
        first = await customer.expect("bot_reply", timeout=30)
        await customer.say("yes please")
        second = await customer.expect(
            "bot_reply", timeout=30, where=lambda d: d["message_id"] != first["message_id"]
        )
    # Customers do not see intents: the store has what the model said about each turn.
    store_url = service.env["SERVING_STORE_URL"]
    return predicted_intent(store_url, first["reply_to"]), predicted_intent(
        store_url, second["reply_to"]
    )


def test_yes_please_after_two_different_offers_gets_two_intents(
    dialogue_service: ServiceProcess,
) -> None:
    answered = {name: run(_conversation(dialogue_service, text)) for name, text in OPENINGS.items()}
    assert answered["lost"] == ("report_lost_card", AGREED["lost"])
    assert answered["refund"] == ("request_refund", AGREED["refund"])

"""The served chat tier and /feedback on a real PostgreSQL store (a real `bentoml serve`)."""

from __future__ import annotations

import uuid

import httpx
import pytest
import sqlalchemy as sa

from conversations import tables
from conversations.readers import read_conversation_store
from serving.chat.client import ChatClient
from tests.postgres import PostgresServer
from tests.serving.chat.conftest import run, token, unique_user
from tests.serving.conftest import FEEDBACK_KEY, ServiceProcess, service_env

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pg_store_url(postgres_server: PostgresServer) -> str:
    """One fresh PostgreSQL database for this module's service."""
    return postgres_server.create_database(f"served_{uuid.uuid4().hex[:12]}")


@pytest.fixture(scope="module")
def pg_service(serving_registry: dict, pg_store_url: str):
    """A service whose conversation store is a fresh PostgreSQL database, shared by the module.

    One server for both tests: a `bentoml serve` start is the bulk of this module's time.
    """
    process = ServiceProcess(service_env(serving_registry, SERVING_STORE_URL=pg_store_url))
    process.start()
    yield process
    process.stop()


async def _conversation(service: ServiceProcess, customer_id: str) -> tuple[dict, dict]:
    async with ChatClient.connect(service.ws_url, token(customer_id)) as customer:
        await customer.say("I ordered a card two weeks ago and it still has not arrived")
        created = await customer.expect("support_request_created")
        reply = await customer.expect("bot_reply")
        # The customer's own words, as long as a frame allows: handoff_reason held 64.
        await customer.send("support_escalate", request_id=created["request_id"], reason="w" * 2000)
        await customer.send("heartbeat")
        await customer.expect("pong")  # frames are handled in order: the escalation is done
        assert not customer.of_type("error"), customer.of_type("error")
        return created, reply


def test_chat_and_feedback_land_in_postgres(pg_service: ServiceProcess, pg_store_url: str) -> None:
    customer_id = unique_user("pg-customer")
    created, reply = run(_conversation(pg_service, customer_id))
    long_id = "f" * 128  # /feedback's message_id bound; labels.message_id held 64
    answer = httpx.post(
        f"{pg_service.url}/feedback",
        json={
            "text": "Is my card on its way?",
            "true_intent": "card_arrival",
            "message_id": long_id,
        },
        headers={"X-API-Key": FEEDBACK_KEY},
        timeout=30,
    )
    assert answer.status_code == 200, answer.text

    engine = sa.create_engine(pg_store_url)
    with engine.connect() as connection:
        request = (
            connection.execute(
                sa.select(tables.support_requests).where(
                    tables.support_requests.c.request_id == created["request_id"]
                )
            )
            .mappings()
            .one()
        )
    engine.dispose()
    assert (request["handoff_reason"], request["escalation_reason"]) == ("escalated", "w" * 2000)
    frame = read_conversation_store(pg_store_url).set_index("message_id")
    assert frame.loc[reply["message_id"], "speaker"] == "bot"
    assert frame.loc[reply["reply_to"], "user_id"] == customer_id
    feedback = frame[frame["channel"] == "feedback"]
    assert list(feedback["text"]) == ["Is my card on its way?"]
    assert list(feedback["label_trust"]) == ["service"]


def test_a_nul_in_feedback_is_a_400_naming_the_field(
    pg_service: ServiceProcess, pg_store_url: str
) -> None:
    # PostgreSQL refuses U+0000 in text: the label reached the store and the answer was a 500.
    labels_before = _label_count(pg_store_url)
    for field, value in [("text", "where\x00 is my card"), ("message_id", "m\x00")]:
        answer = httpx.post(
            f"{pg_service.url}/feedback",
            json={"text": "where is my card", "true_intent": "card_arrival", field: value},
            headers={"X-API-Key": FEEDBACK_KEY},
            timeout=30,
        )
        assert answer.status_code == 400, answer.text
        [problem] = answer.json()["detail"]
        assert problem["loc"] == [field] and "NUL" in problem["msg"], problem
    assert _label_count(pg_store_url) == labels_before


def _label_count(store_url: str) -> int:
    engine = sa.create_engine(store_url)
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(tables.labels))
        stored = int(count.scalar_one())
    engine.dispose()
    return stored

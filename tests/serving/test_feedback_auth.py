"""/feedback on a real `bentoml serve`: who may label, and the trust each credential stores."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
import sqlalchemy as sa

from conversations import tables
from serving.chat.auth import issue_token
from tests.serving.conftest import ADMIN_KEY, CHAT_SECRET, FEEDBACK_KEY, FEEDBACK_KEY_NAME

pytestmark = pytest.mark.slow


def send_feedback(service, headers: dict[str, str], text: str) -> httpx.Response:
    body = {"text": text, "true_intent": "card_arrival", "message_id": f"m-{time.time_ns()}"}
    return httpx.post(f"{service.url}/feedback", json=body, headers=headers, timeout=30)


def stored_labels(service, text: str) -> list[dict]:
    engine = tables.create_engine(service.env["SERVING_STORE_URL"])
    with engine.connect() as connection:
        query = sa.select(tables.labels).where(tables.labels.c.text == text)
        rows = [dict(row) for row in connection.execute(query).mappings()]
    engine.dispose()
    return rows


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


@pytest.mark.parametrize(
    ("headers", "trust", "labelled_by"),
    [
        ({"x-api-key": FEEDBACK_KEY}, "service", FEEDBACK_KEY_NAME),
        (bearer(issue_token(CHAT_SECRET, "agent-7", "agent", 600)), "agent", "agent-7"),
        ({"x-api-key": ADMIN_KEY}, "reviewed", "admin"),
    ],
    ids=["service-key", "agent-jwt", "admin-key"],
)
def test_each_credential_stores_its_trust(service, headers, trust, labelled_by):
    text = f"my card has not come ({trust})"
    response = send_feedback(service, headers, text)
    assert response.status_code == 200, response.text
    [row] = stored_labels(service, text)
    assert row["label_id"] == response.json()["feedback_id"]
    assert (row["trust"], row["labelled_by"], row["label_source"]) == (
        trust,
        labelled_by,
        "feedback",
    )


FORGED = jwt.encode(
    {"sub": "agent-7", "role": "agent", "exp": int(time.time()) + 600},
    "another-secret-that-is-long-enough-for-hs256",
    algorithm="HS256",
)


@pytest.mark.parametrize(
    ("headers", "status", "message"),
    [
        ({}, 401, "feedback needs a credential"),
        ({"x-api-key": "not-a-key"}, 401, "X-API-Key is not valid"),
        (bearer(FORGED), 401, "Signature verification failed"),
        (bearer(issue_token(CHAT_SECRET, "agent-7", "agent", -10)), 401, "expired"),
        ({"authorization": "Basic YWxpY2U6c2VjcmV0"}, 401, "Bearer <agent JWT>"),
        (bearer(issue_token(CHAT_SECRET, "cust-1", "customer", 600)), 403, "role customer"),
    ],
    ids=["anonymous", "wrong-key", "forged-jwt", "expired-jwt", "basic-auth", "customer-jwt"],
)
def test_feedback_without_a_labelling_credential_is_refused(service, headers, status, message):
    text = f"refused feedback {time.time_ns()}"
    response = send_feedback(service, headers, text)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert ("www-authenticate" in response.headers) is (status == 401)
    assert stored_labels(service, text) == []

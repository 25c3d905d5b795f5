"""/feedback on a real `bentoml serve`: who may label, and the trust each credential stores."""

from __future__ import annotations

import time

import httpx
import jwt
import pytest
import sqlalchemy as sa

from conversations import store_engine, tables
from serving.chat.auth import issue_token
from tests.serving.conftest import ADMIN_KEY, CHAT_SECRET, FEEDBACK_KEY, FEEDBACK_KEY_NAME

pytestmark = pytest.mark.slow


def send_feedback(service, headers: dict[str, str], text: str) -> httpx.Response:
    body = {"text": text, "true_intent": "card_arrival", "message_id": f"m-{time.time_ns()}"}
    return httpx.post(f"{service.url}/feedback", json=body, headers=headers, timeout=30)


def stored_labels(service, text: str) -> list[dict]:
    engine = store_engine.create_engine(service.env["SERVING_STORE_URL"])
    with engine.connect() as connection:
        query = sa.select(tables.labels).where(tables.labels.c.text == text)
        rows = [dict(row) for row in connection.execute(query).mappings()]
    engine.dispose()
    return rows


def bearer(token: str) -> dict[str, str]:
    return {"authorization": f"Bearer {token}"}


def forged() -> str:
    claims = {"sub": "agent-7", "role": "agent", "exp": int(time.time()) + 600}
    return jwt.encode(claims, "another-secret-that-is-long-enough-for-hs256", algorithm="HS256")


# Made when a test runs: a token made at collection could expire before its test.
CREDENTIALS = {
    "service-key": lambda: {"x-api-key": FEEDBACK_KEY},
    "admin-key": lambda: {"x-api-key": ADMIN_KEY},
    "agent-jwt": lambda: bearer(issue_token(CHAT_SECRET, "agent-7", "agent", 600)),
    "anonymous": dict,
    "wrong-key": lambda: {"x-api-key": "not-a-key"},
    "forged-jwt": lambda: bearer(forged()),
    "expired-jwt": lambda: bearer(issue_token(CHAT_SECRET, "agent-7", "agent", -10)),
    "basic-auth": lambda: {"authorization": "Basic YWxpY2U6c2VjcmV0"},
    "customer-jwt": lambda: bearer(issue_token(CHAT_SECRET, "cust-1", "customer", 600)),
}


@pytest.mark.parametrize(
    ("credential", "trust", "labelled_by"),
    [
        ("service-key", "service", FEEDBACK_KEY_NAME),
        ("agent-jwt", "agent", "agent-7"),
        ("admin-key", "reviewed", "admin"),
    ],
)
def test_each_credential_stores_its_trust(service, credential, trust, labelled_by):
    text = f"my card has not come ({trust}, {time.time_ns()})"
    response = send_feedback(service, CREDENTIALS[credential](), text)
    assert response.status_code == 200, response.text
    [row] = stored_labels(service, text)
    assert row["label_id"] == response.json()["feedback_id"]
    assert (row["trust"], row["labelled_by"], row["label_source"]) == (
        trust,
        labelled_by,
        "feedback",
    )


@pytest.mark.parametrize(
    ("credential", "status", "message"),
    [
        ("anonymous", 401, "feedback needs a credential"),
        ("wrong-key", 401, "X-API-Key is not valid"),
        ("forged-jwt", 401, "Signature verification failed"),
        ("expired-jwt", 401, "expired"),
        ("basic-auth", 401, "Bearer <agent JWT>"),
        ("customer-jwt", 403, "role customer"),
    ],
)
def test_feedback_without_a_labelling_credential_is_refused(service, credential, status, message):
    text = f"refused feedback {time.time_ns()}"
    response = send_feedback(service, CREDENTIALS[credential](), text)
    assert response.status_code == status, response.text
    assert message in response.json()["error"]
    assert ("www-authenticate" in response.headers) is (status == 401)
    assert stored_labels(service, text) == []

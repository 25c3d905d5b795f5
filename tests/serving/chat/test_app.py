"""The widget's token exchange and the /chat app's own errors (serving/chat/app.py).

The app itself, in Starlette's test client: errors answer `{"error": ...}` like the service's.
The served paths (stock 404s rewritten, the dev token route) are in
tests/serving/test_route_errors.py, a served exchange and the widget in test_chat_pages.py.
"""

from __future__ import annotations

import json
import time

import jwt
import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from serving.chat.app import WidgetSessions, build_chat_app
from serving.chat.auth import issue_site_token, verify_site_token, verify_token
from serving.chat.settings import ChatSettings
from serving.chat.token_cli import main as auth_command
from tests.serving.chat.conftest import token
from tests.serving.conftest import CHAT_SECRET

SITE, SITE_KEY = "acme", "acme-bank-widget-key-0123456789abcdef"
SESSIONS = WidgetSessions({SITE: SITE_KEY}, CHAT_SECRET, 600)


@pytest.fixture(scope="module")
def app() -> TestClient:
    return TestClient(build_chat_app(widget_sessions=SESSIONS))


def post(client: TestClient, body: bytes) -> tuple[int, dict]:
    answer = client.post(
        "/widget/session", content=body, headers={"content-type": "application/json"}
    )
    return answer.status_code, answer.json()


@pytest.mark.parametrize(
    ("body", "field"),
    [
        (b"not json", "body.0"),
        (b'{"token": 5}', "body.token"),
        (b'{"token": "a", "role": "agent"}', "body.role"),
        (b"{}", "body.token"),
        (json.dumps({"token": "x" * 5000}).encode(), "body.token"),
    ],
)
def test_a_malformed_exchange_is_a_400_error_naming_the_field(app, body, field):
    """`error` in words, `detail` the problems (as the BentoML routes answer), never FastAPI's
    422 `{"detail": [...]}` nor the value sent."""
    status, document = post(app, body)
    assert status == 400, document
    assert set(document) == {"error", "detail"} and field in document["error"], document
    [problem] = document["detail"]
    assert set(problem) == {"type", "loc", "msg"}, problem
    assert ".".join(str(part) for part in problem["loc"]) == field, problem
    assert "xxxx" not in json.dumps(document)


def test_an_unreadable_body_and_no_sites_answer_an_error(app):
    status, document = post(app, b'{"token": "\xff\xfe"}')  # not UTF-8: FastAPI's own 400
    assert status == 400 and set(document) == {"error"} and document["error"], document
    status, document = post(TestClient(build_chat_app()), b'{"token": "a.b.c"}')
    assert status == 404, document
    assert document == {"error": "no widget sites are configured (CHAT_WIDGET_KEYS)"}


def signed(claims: dict, key: str = SITE_KEY, **headers: object) -> str:
    """A site token with these claims (iat/exp default to now / +300 s)."""
    now = int(time.time())
    return jwt.encode({"iat": now, "exp": now + 300, **claims}, key, headers=headers)


def test_a_site_token_speaks_for_a_customer_of_its_site_only(app):
    """Never for an agent, another site or a bare user id: a 401 saying why, never a 500."""
    answer = app.post("/widget/session", json={"token": issue_site_token(SITE, SITE_KEY, "u-17")})
    assert answer.status_code == 200 and answer.headers["cache-control"] == "no-store"
    identity = verify_token(CHAT_SECRET, answer.json()["token"])
    assert (identity.user_id, identity.role.value) == ("acme:u-17", "customer")
    now = int(time.time())
    refused = {
        "no kid (a chat token)": token("u-17", "agent"),
        "unknown site": signed({"sub": "u-17"}, kid="other"),
        "another key": signed({"sub": "u-17"}, key="x" * 40, kid=SITE),
        "an agent": signed({"sub": "u-17", "role": "agent"}, kid=SITE),
        "too long a life": signed({"sub": "u-17", "exp": now + 3600}, kid=SITE),
        "expired": signed({"sub": "u-17", "iat": now - 900, "exp": now - 600}, kid=SITE),
        "a separator in sub": signed({"sub": "bank:admin"}, kid=SITE),
        "no sub": signed({}, kid=SITE),
        "alg none": jwt.encode({"sub": "u-17", "exp": now + 60}, None, "none", {"kid": SITE}),
        "not a jwt": "abc.def",
    }
    for why, forged in refused.items():
        answer = app.post("/widget/session", json={"token": forged})
        assert answer.status_code == 401, (why, answer.text)
        assert set(answer.json()) == {"error"} and answer.json()["error"], (why, answer.text)
        assert answer.headers["cache-control"] == "no-store"


@pytest.mark.parametrize(
    ("keys", "problem"),
    [
        ({"acme": "short"}, "at least 32"),
        ({"Acme Bank": SITE_KEY}, "is not 1-32"),
        ({"acme": CHAT_SECRET}, "is CHAT_JWT_SECRET"),
    ],
)
def test_widget_keys_are_checked_at_start(keys, problem):
    with pytest.raises(ValidationError, match=problem):
        ChatSettings(jwt_secret=CHAT_SECRET, widget_keys=keys)


def test_the_token_command_signs_site_tokens_with_the_sites_key(monkeypatch, capsys):
    monkeypatch.setenv("CHAT_JWT_SECRET", CHAT_SECRET)
    monkeypatch.setenv("CHAT_WIDGET_KEYS", json.dumps({SITE: SITE_KEY}))
    assert auth_command(["--site", SITE, "--user", "u-9"]) == 0
    site_token = capsys.readouterr().out.strip()
    assert verify_site_token({SITE: SITE_KEY}, site_token).user_id == "acme:u-9"
    assert auth_command(["--site", "other", "--user", "u-9"]) == 2
    assert "no widget site 'other'" in capsys.readouterr().err

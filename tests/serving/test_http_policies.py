"""Fast checks of the HTTP policies' pure parts: credentials, field bounds, the spec, settings."""

from __future__ import annotations

import pytest
from pydantic import BaseModel, SecretStr, ValidationError

from conversations.schema import LabelTrust
from serving.auth import CredentialError, FeedbackAuthenticator, Labeller
from serving.chat.auth import issue_token
from serving.inputs import CONTEXT_MAX_BYTES, Context
from serving.openapi import complete_spec
from serving.settings import ServingSettings

SECRET = "unit-test-chat-secret-long-enough-for-hs256"
AUTH = FeedbackAuthenticator(
    {"chat-backend": SecretStr("service-key-0123456789")}, SecretStr("admin-key-0123456789"), SECRET
)


def with_tokens(authorization: str | None) -> str | None:
    """Tokens are made when the test runs: made at collection, they could expire first."""
    if authorization is None:
        return None
    return authorization.format(
        agent=issue_token(SECRET, "ann", "agent", 600),
        customer=issue_token(SECRET, "cus", "customer", 600),
        forged=issue_token("x" * 40, "ann", "agent", 600),
        expired=issue_token(SECRET, "ann", "agent", -10),
    )


@pytest.mark.parametrize(
    ("api_key", "authorization", "expected"),
    [
        ("service-key-0123456789", None, Labeller(LabelTrust.SERVICE, "chat-backend")),
        ("admin-key-0123456789", None, Labeller(LabelTrust.REVIEWED, "admin")),
        (
            None,
            "Bearer {agent}",
            Labeller(LabelTrust.AGENT, "ann"),
        ),
        (
            None,
            "bearer  {agent}",
            Labeller(LabelTrust.AGENT, "ann"),
        ),
    ],
)
def test_credentials_give_their_trust(api_key, authorization, expected):
    assert AUTH.authenticate(api_key, with_tokens(authorization)) == expected


@pytest.mark.parametrize(
    ("api_key", "authorization", "status"),
    [
        (None, None, 401),
        ("", None, 401),
        ("service-key-012345678", None, 401),
        # A wrong key is not retried as a token, even with a valid one beside it.
        ("nope", "Bearer {agent}", 401),
        (None, "Bearer", 401),
        (None, "Bearer {forged}", 401),
        (None, "Bearer {expired}", 401),
        (None, "Bearer {customer}", 403),
    ],
)
def test_other_requests_are_refused(api_key, authorization, status):
    with pytest.raises(CredentialError) as refused:
        AUTH.authenticate(api_key, with_tokens(authorization))
    assert refused.value.status == status and refused.value.message


def test_tokens_are_refused_without_a_chat_secret():
    auth = FeedbackAuthenticator({}, None, None)
    with pytest.raises(CredentialError, match="CHAT_JWT_SECRET"):
        auth.authenticate(None, with_tokens("Bearer {agent}"))


class WithContext(BaseModel):
    context: Context


@pytest.mark.parametrize(
    "context",
    [
        {"user": {"message_count": 3, "previous_intents": ["a", "b"]}, "session": {}},
        {"a": {"b": [1, 2.5, None, True, "x"]}, "big": 10**30},
    ],
)
def test_contexts_within_bounds_pass(context):
    assert WithContext(context=context).context == context


@pytest.mark.parametrize(
    ("context", "message"),
    [
        ({"a": {"b": {"c": {}}}}, "context.a.b.c nests deeper than 3"),
        ({"a": [[[1]]]}, "context.a[0][0] nests deeper than 3"),
        ({"n": float("inf")}, "context.n is not a finite number"),
        ({"n": 10**400}, "context.n is too large"),
        ({"note": "x" * CONTEXT_MAX_BYTES}, f"the maximum is {CONTEXT_MAX_BYTES}"),
    ],
)
def test_contexts_out_of_bounds_fail_naming_the_place(context, message):
    with pytest.raises(ValidationError, match=message.replace("[", r"\[").replace("]", r"\]")):
        WithContext(context=context)


def bentoml_like_spec() -> dict:
    api = {
        "responses": {200: {"description": "ok"}, "400": {"description": "bad"}},
        "x-bentoml-name": "feedback",
        "requestBody": {"content": {"application/json": {"schema": {"type": "object"}}}},
    }
    reload = {
        "responses": {"200": {"description": "ok"}},
        "parameters": [{"name": "x-api-key", "in": "header", "schema": {"type": "string"}}],
    }
    return {"paths": {"/feedback": {"post": api}, "/admin/reload": {"post": reload}}}


def test_the_spec_declares_errors_credentials_and_bodies():
    spec = complete_spec(bentoml_like_spec())
    feedback = spec["paths"]["/feedback"]["post"]
    assert set(feedback["responses"]) == {
        "200",
        "400",
        "401",
        "403",
        "408",
        "413",
        "415",
        "429",
        "500",
        "503",
    }
    assert feedback["security"] == [{"ApiKey": []}, {"AgentToken": []}]
    body = feedback["requestBody"]
    assert body["required"] is True
    assert body["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/feedback__Input"
    }
    reload = spec["paths"]["/admin/reload"]["post"]
    assert reload["security"] == [{"ApiKey": []}] and "parameters" not in reload
    assert {"401", "413", "429", "503"} <= set(reload["responses"])
    assert spec["components"]["securitySchemes"]["ApiKey"]["name"] == "X-API-Key"
    assert bentoml_like_spec()["paths"]["/feedback"]["post"]["responses"].keys() == {200, "400"}


def test_feedback_keys_may_be_a_named_object_or_a_list(monkeypatch):
    monkeypatch.setenv("SERVING_FEEDBACK_API_KEYS", '["k-0123456789abcdef", "k-fedcba9876543210"]')
    keys = ServingSettings().feedback_api_keys
    assert {name: key.get_secret_value() for name, key in keys.items()} == {
        "key-1": "k-0123456789abcdef",
        "key-2": "k-fedcba9876543210",
    }


@pytest.mark.parametrize(
    ("keys", "message"),
    [
        ('{"chat": "short-secret"}', "shorter than 16"),
        ('{"a": "k-0123456789abcdef", "b": "k-0123456789abcdef"}', "share one key"),
        ('{"admin": "k-0123456789abcdef"}', "not allowed"),
        ('{"chat": "the-admin-key-0123456789"}', "may not contain SERVING_ADMIN_API_KEY"),
    ],
)
def test_bad_feedback_keys_fail_at_start_without_echoing_them(monkeypatch, keys, message):
    monkeypatch.setenv("SERVING_ADMIN_API_KEY", "the-admin-key-0123456789")
    monkeypatch.setenv("SERVING_FEEDBACK_API_KEYS", keys)
    with pytest.raises(ValidationError, match=message) as failure:
        ServingSettings()
    assert "short-secret" not in str(failure.value) and "0123456789" not in str(failure.value)


def test_the_body_limit_is_sized_from_a_full_batch(monkeypatch):
    monkeypatch.setenv("SERVING_MAX_BATCH_ITEMS", "10")
    monkeypatch.setenv("SERVING_MAX_TEXT_CHARS", "100")
    assert ServingSettings().body_limit_bytes == 10 * (100 * 4 + 4096) + 65_536
    monkeypatch.setenv("SERVING_MAX_BODY_BYTES", "1234")
    assert ServingSettings().body_limit_bytes == 1234

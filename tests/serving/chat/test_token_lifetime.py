"""Chat tokens have a maximum lifetime: a token signed to live for ever is refused (close 1008)."""

from __future__ import annotations

import asyncio
import time

import jwt
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from serving.auth import CredentialError, FeedbackAuthenticator
from serving.chat.auth import TOKEN_MAX_LIFETIME_S, AuthError, verify_token
from serving.chat.settings import ChatSettings
from tests.serving.chat.conftest import run, token
from tests.serving.conftest import CHAT_SECRET


def signed(**claims: object) -> str:
    """A token with exactly these claims, signed with the service's secret."""
    return jwt.encode({"sub": "longlived", "role": "customer", **claims}, CHAT_SECRET, "HS256")


def test_verify_token_bounds_the_lifetime():
    now = int(time.time())
    assert verify_token(CHAT_SECRET, signed(iat=now, exp=now + 3600)).user_id == "longlived"
    for claims in ({"iat": now, "exp": 10**20}, {"exp": now + TOKEN_MAX_LIFETIME_S + 120}):
        with pytest.raises(AuthError, match="lives at most"):
            verify_token(CHAT_SECRET, signed(**claims))
    with pytest.raises(AuthError, match="lives at most 60 s"):
        verify_token(CHAT_SECRET, signed(iat=now, exp=now + 120), max_lifetime_s=60)


def test_feedback_bearer_tokens_have_the_same_bound():
    auth = FeedbackAuthenticator({}, None, CHAT_SECRET, token_max_lifetime_s=600)
    now = int(time.time())
    agent = jwt.encode({"sub": "ann", "role": "agent", "iat": now, "exp": now + 3600}, CHAT_SECRET)
    with pytest.raises(CredentialError, match="lives at most 600 s"):
        auth.authenticate(None, f"Bearer {agent}")


def test_the_tier_cannot_issue_tokens_its_own_check_refuses():
    with pytest.raises(ValueError, match="CHAT_TOKEN_TTL_S exceeds CHAT_TOKEN_MAX_LIFETIME_S"):
        ChatSettings(jwt_secret="x" * 40, token_ttl_s=7200, token_max_lifetime_s=3600)


@pytest.mark.slow
@pytest.mark.parametrize(
    "make_token",
    [
        lambda: signed(iat=int(time.time()), exp=10**20),
        lambda: signed(exp=int(time.time()) + TOKEN_MAX_LIFETIME_S + 3600),
    ],
    ids=["exp-1e20", "no-iat"],
)
def test_a_token_living_too_long_closes_the_socket_with_1008(service, make_token):
    async def attempt(url: str) -> ConnectionClosed:
        async with connect(url) as socket:
            with pytest.raises(ConnectionClosed) as closed:
                await asyncio.wait_for(socket.recv(), 10)
            return closed.value

    closed = run(attempt(f"{service.ws_url}?token={make_token()}"))
    assert closed.rcvd is not None and closed.rcvd.code == 1008
    assert "lives at most" in closed.rcvd.reason

    async def accepted(url: str) -> None:
        async with connect(url) as socket:
            await asyncio.wait_for(socket.recv(), 10)  # the welcome: an ordinary token still works

    run(accepted(f"{service.ws_url}?token={token('shortlived')}"))

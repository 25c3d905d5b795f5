"""Chat-tier helpers: tokens for the test secret and a runner for async test bodies."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable, Coroutine
from typing import Any

import pytest
import sqlalchemy as sa

from conversations import tables
from serving.chat.auth import issue_token
from tests.serving.conftest import CHAT_SECRET, ServiceProcess, service_env

_users = itertools.count(1)


def token(user_id: str, role: str = "customer", ttl_s: int = 3600) -> str:
    """A token signed with the test services' secret."""
    return issue_token(CHAT_SECRET, user_id, role, ttl_s)


def unique_user(prefix: str) -> str:
    """A user id no other test uses (the session service's store is shared)."""
    return f"{prefix}-{next(_users)}"


def predicted_intent(store_url: str, message_id: str) -> str:
    """The intent the bot's model gave a stored customer message (agents see it, customers not)."""
    engine = sa.create_engine(store_url)
    query = sa.select(tables.predictions.c.intent).where(
        tables.predictions.c.message_id == message_id
    )
    with engine.connect() as connection:
        intent = connection.scalar(query)
    engine.dispose()
    assert intent is not None, f"no prediction for {message_id}"
    return str(intent)


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run an async test body."""
    return asyncio.run(coroutine)


@pytest.fixture
def make_token() -> Callable[..., str]:
    """The token factory."""
    return token


@pytest.fixture(scope="session")
def dev_login_service(serving_registry):
    """A service on loopback with CHAT_DEV_LOGIN=true (the local demo of `make serve`)."""
    process = ServiceProcess(service_env(serving_registry, "dev-login.db", CHAT_DEV_LOGIN="true"))
    process.start()
    yield process
    process.stop()

"""Two `bentoml serve` workers on one PostgreSQL store (the production profile): sockets of one
customer on both workers open one support conversation between them, not one each.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections import Counter
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from conversations import tables
from serving.chat.client import ChatClient
from tests.postgres import PostgresServer
from tests.serving.chat.conftest import run, token, unique_user
from tests.serving.conftest import ServiceProcess, service_env

pytestmark = pytest.mark.slow
CUSTOMERS = 8
# Sockets per customer, opened together: the kernel hands the accepts to either worker.
SOCKETS = 6


@pytest.fixture(scope="module")
def two_workers(serving_registry: dict, postgres_server: PostgresServer) -> Iterator[tuple]:
    """A 2-worker service on a fresh PostgreSQL database, and that database's URL."""
    store_url = postgres_server.create_database(f"workers_{uuid.uuid4().hex[:12]}")
    env = service_env(serving_registry, SERVING_STORE_URL=store_url, SERVING_WORKERS="2")
    process = ServiceProcess(env)
    process.start()
    yield process, store_url
    process.stop()


async def _first_messages_at_once(service: ServiceProcess, customer_id: str) -> set[str]:
    """Every socket of the customer sends a first message (no room) at once; the rooms acked."""
    async with contextlib.AsyncExitStack() as stack:
        connecting = (
            stack.enter_async_context(ChatClient.connect(service.ws_url, token(customer_id)))
            for _ in range(SOCKETS)
        )
        clients = await asyncio.gather(*connecting)
        await asyncio.gather(
            *(client.say(f"where is my card? ({n})") for n, client in enumerate(clients))
        )
        acks = await asyncio.gather(*(client.expect("ack", timeout=30) for client in clients))
    return {ack["room_id"] for ack in acks}


async def _race(service: ServiceProcess, customers: list[str]) -> list[set[str]]:
    return list(
        await asyncio.gather(*(_first_messages_at_once(service, user) for user in customers))
    )


def test_sockets_of_one_customer_on_two_workers_open_one_conversation(two_workers: tuple) -> None:
    service, store_url = two_workers
    customers = [unique_user("two-workers") for _ in range(CUSTOMERS)]
    acked_rooms = run(_race(service, customers))

    engine = sa.create_engine(store_url)
    requests, rooms = tables.support_requests, tables.rooms
    with engine.connect() as connection:
        opened = Counter(
            connection.scalars(
                sa.select(requests.c.customer_id).where(requests.c.customer_id.in_(customers))
            )
        )
        support_rooms = Counter(
            connection.scalars(
                sa.select(rooms.c.creator_id).where(rooms.c.creator_id.in_(customers))
            )
        )
    engine.dispose()
    assert opened == dict.fromkeys(customers, 1)
    assert support_rooms == dict.fromkeys(customers, 1)  # no room left behind by a loser
    assert [len(found) for found in acked_rooms] == [1] * CUSTOMERS
    # Every frame was answered without an error: a deadlock between the workers' transactions
    # is logged even when the frame it failed was not an awaited one.
    assert service.log is not None
    errors = [line for line in service.log.read_text().splitlines() if "[ERROR]" in line]
    assert errors == []

"""One open support request per customer, however many workers race to open it.

Every `ChatStore` here is a worker of its own (its own engine and connections), as the workers
of `bentoml serve` and replicas are; threads make them call the store at once. Each test runs on
SQLite (a file shared by processes) and on the session's real PostgreSQL.
"""

from __future__ import annotations

import logging
import threading
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from functools import partial
from typing import TypeVar

import pytest
import sqlalchemy as sa

from conversations import store_engine, tables
from serving.chat.auth import Identity, Role
from serving.chat.protocol import RoomType
from serving.chat.store import ChatStore
from serving.chat.support import SupportCase

T = TypeVar("T")
WORKERS = 4
CUSTOMERS = 12


@pytest.fixture
def workers(sqlite_or_postgres_url: str) -> Iterator[list[ChatStore]]:
    """`WORKERS` stores on one database, each with its own connections."""
    stores = [ChatStore(sqlite_or_postgres_url) for _ in range(WORKERS)]
    yield stores
    for store in stores:
        store.close()


def at_once(calls: Sequence[Callable[[], T]]) -> list[T]:
    """Run the calls on threads released together; their results in order (or re-raise)."""
    barrier = threading.Barrier(len(calls))
    results: list[T | BaseException | None] = [None] * len(calls)

    def run(position: int) -> None:
        barrier.wait()
        try:
            results[position] = calls[position]()
        except BaseException as failure:
            results[position] = failure

    threads = [threading.Thread(target=run, args=(position,)) for position in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    for result in results:
        if isinstance(result, BaseException):
            raise result
    return results  # type: ignore[return-value]


def table_rows(engine: sa.Engine, table: sa.Table) -> list[sa.RowMapping]:
    """Every row of a table."""
    with engine.connect() as connection:
        return list(connection.execute(sa.select(table)).mappings())


def test_workers_racing_open_one_request_and_one_room_per_customer(
    workers: list[ChatStore],
) -> None:
    customers = [Identity(f"racer-{number}", Role.CUSTOMER) for number in range(CUSTOMERS)]
    answers: dict[str, list[tuple[SupportCase, bool]]] = {}
    for customer in customers:
        opens = [partial(store.support.open_conversation, customer) for store in workers]
        answers[customer.user_id] = at_once(opens)

    requests = table_rows(workers[0].engine, tables.support_requests)
    rooms = table_rows(workers[0].engine, tables.rooms)
    assert Counter(row["customer_id"] for row in requests) == {
        customer.user_id: 1 for customer in customers
    }
    # The losers' support rooms were rolled back with their requests: none is left behind.
    assert sorted(row["room_id"] for row in rooms) == sorted(row["room_id"] for row in requests)
    for customer_id, answered in answers.items():
        assert len({case.request_id for case, _ in answered}) == 1, customer_id
        assert [created for _, created in answered].count(True) == 1, customer_id


def test_the_store_refuses_a_second_open_request_of_a_customer(sqlite_or_postgres_url: str) -> None:
    store = ChatStore(sqlite_or_postgres_url)
    customer = Identity("twice", Role.CUSTOMER)
    try:
        first, _ = store.support.open_conversation(customer)
        room = store.rooms.create_room("other", RoomType.SUPPORT, customer, [])
        row = {"room_id": room.room_id, "customer_id": customer.user_id, "created_at": _at(9)}
        with pytest.raises(sa.exc.IntegrityError), store.engine.begin() as connection:
            connection.execute(
                sa.insert(tables.support_requests).values(request_id="x", status="bot", **row)
            )
        # Resolved requests do not count: a customer has as many of those as they like.
        with store.engine.begin() as connection:
            connection.execute(
                sa.insert(tables.support_requests).values(request_id="y", status="resolved", **row)
            )
        store.support.resolve(first.request_id, "agent-1", "done")
        second, created = store.support.open_conversation(customer)
    finally:
        store.close()
    assert created and second.request_id != first.request_id


def _at(minute: int) -> datetime:
    return datetime(2024, 5, 1, 12, minute, tzinfo=UTC)


# (request id, customer, status, minute created): "dup" holds three open requests.
OLD_ROWS = [
    ("dup-oldest", "dup", "with_agent", 1),
    ("dup-middle", "dup", "bot", 2),
    ("dup-newest", "dup", "waiting_agent", 3),
    ("dup-closed", "dup", "resolved", 4),
    ("solo-open", "solo", "bot", 1),
]


def _older_release_store(url: str) -> None:
    """The schema as an older release left it (no unique index), holding duplicate requests."""
    engine = sa.create_engine(url)
    tables.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("DROP INDEX IF EXISTS uq_support_requests_open_customer"))
        for request_id, customer_id, status, minute in OLD_ROWS:
            connection.execute(
                sa.insert(tables.support_requests).values(
                    request_id=request_id,
                    room_id=f"room-{request_id}",
                    customer_id=customer_id,
                    status=status,
                    resolution="fixed" if status == "resolved" else None,
                    created_at=_at(minute),
                )
            )
    engine.dispose()


def test_an_older_store_with_duplicate_open_requests_starts_with_the_newest_open(
    sqlite_or_postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    _older_release_store(sqlite_or_postgres_url)
    caplog.set_level(logging.WARNING, logger="conversations.tables")
    # Two workers of the new release start at once on it: both start, the migration runs once.
    started = at_once(
        [lambda: ChatStore(sqlite_or_postgres_url), lambda: ChatStore(sqlite_or_postgres_url)]
    )
    try:
        rows = {
            row["request_id"]: row for row in table_rows(started[0].engine, tables.support_requests)
        }
        still_open = started[1].support.open_for_customer("dup")
        new_request, created = started[0].support.open_conversation(Identity("dup", Role.CUSTOMER))
    finally:
        for store in started:
            store.close()

    assert still_open is not None and still_open.request_id == "dup-newest"
    assert new_request.request_id == "dup-newest" and not created
    assert {key: row["status"] for key, row in rows.items()} == {
        "dup-oldest": "resolved",
        "dup-middle": "resolved",
        "dup-newest": "waiting_agent",
        "dup-closed": "resolved",
        "solo-open": "bot",
    }
    for request_id in ("dup-oldest", "dup-middle"):
        assert rows[request_id]["resolution"] == store_engine.DUPLICATE_RESOLUTION
        assert rows[request_id]["resolved_at"] is not None
    assert rows["dup-closed"]["resolution"] == "fixed"
    logged = [record.getMessage() for record in caplog.records]
    assert sum("dup-oldest" in line for line in logged) == 1, logged
    assert sum("dup-middle" in line for line in logged) == 1, logged
    assert not any("dup-newest" in line or "solo" in line for line in logged), logged

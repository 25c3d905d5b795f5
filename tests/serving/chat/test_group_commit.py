"""Group commit (serving/chat/group_commit.py): jobs queued together share one transaction, and
one failing job never loses or fails the others of its group."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest
import sqlalchemy as sa

from serving.chat.group_commit import GroupCommitter

rows = sa.table("rows", sa.column("name"))


def insert(name: str):
    def job(connection: sa.Connection) -> str:
        if name == "bad":
            raise ValueError("a job that fails")
        connection.execute(sa.insert(rows), {"name": name})
        return name

    return job


def test_a_failing_job_rolls_back_alone_and_the_others_commit(tmp_path):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE rows (name TEXT NOT NULL)")
    commits: list[int] = []
    sa.event.listen(engine, "commit", lambda connection: commits.append(1))
    writer = ThreadPoolExecutor(1)
    committer = GroupCommitter(engine, writer)

    async def run() -> list[object]:
        jobs = [committer.run(insert(name)) for name in ("a", "b", "c", "d")]
        first = await asyncio.gather(*jobs)
        commits.clear()
        mixed = [committer.run(insert(name)) for name in ("e", "bad", "f")]
        return [first, *await asyncio.gather(*mixed, return_exceptions=True)]

    try:
        first, e, bad, f = asyncio.run(run())
    finally:
        writer.shutdown(wait=True)
    assert first == ["a", "b", "c", "d"]
    assert committer.groups <= 3  # four jobs queued at once did not take four transactions
    assert (e, f) == ("e", "f") and isinstance(bad, ValueError)
    with engine.connect() as connection:
        stored = sorted(connection.scalars(sa.select(rows.c.name)))
    assert stored == ["a", "b", "c", "d", "e", "f"]
    assert len(commits) == 2  # the group rolled back; "e" and "f" then committed alone


@pytest.mark.parametrize("size", [1, 40])
def test_every_caller_gets_its_own_result_in_order(tmp_path, size):
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE rows (name TEXT NOT NULL)")
    writer = ThreadPoolExecutor(1)
    committer = GroupCommitter(engine, writer)

    async def run() -> list[str]:
        return await asyncio.gather(*(committer.run(insert(str(n))) for n in range(size)))

    try:
        results = asyncio.run(run())
    finally:
        writer.shutdown(wait=True)
    assert results == [str(n) for n in range(size)]
    with engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(rows)) == size


def test_without_an_executor_groups_run_on_the_event_loop(tmp_path):
    # SQLite's groups run between the loop's callbacks: no writer thread to hand the GIL to.
    engine = sa.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE rows (name TEXT NOT NULL)")
    committer = GroupCommitter(engine, None)
    threads: set[int] = set()

    def job(name: str):
        def run(connection: sa.Connection) -> str:
            threads.add(threading.get_ident())
            return insert(name)(connection)

        return run

    async def run() -> tuple[list[object], int]:
        mixed = [committer.run(job(name)) for name in ("a", "bad", "b")]
        return await asyncio.gather(*mixed, return_exceptions=True), threading.get_ident()

    (a, bad, b), loop_thread = asyncio.run(run())
    assert (a, b) == ("a", "b") and isinstance(bad, ValueError)
    assert threads == {loop_thread}
    assert committer.groups == 1  # queued in one turn of the loop: one group (then each alone)
    with engine.connect() as connection:
        assert sorted(connection.scalars(sa.select(rows.c.name))) == ["a", "b"]


def test_a_server_database_group_writes_its_rooms_in_one_order(postgres_url):
    # Two workers' groups locking the same two rooms in opposite orders would deadlock (each
    # holds one row the other waits for); sorted by room, every group locks them alike.
    engine = sa.create_engine(postgres_url)
    ran: list[str] = []

    @dataclass(frozen=True)
    class RoomJob:
        room_id: str
        n: int

        def __call__(self, connection: sa.Connection) -> str:
            ran.append(f"{self.room_id}{self.n}")
            return f"{self.room_id}{self.n}"

    writer = ThreadPoolExecutor(1)
    committer = GroupCommitter(engine, writer)
    jobs = [RoomJob(room, n) for n, room in enumerate("babca")]
    gate = threading.Event()
    writer.submit(gate.wait)  # the writer is busy until every job is queued: one group

    async def run() -> list[str]:
        calls = [asyncio.ensure_future(committer.run(job)) for job in jobs]
        await asyncio.sleep(0.01)
        gate.set()
        return await asyncio.gather(*calls)

    try:
        results = asyncio.run(run())
    finally:
        writer.shutdown(wait=True)
        engine.dispose()
    assert results == ["b0", "a1", "b2", "c3", "a4"]  # each caller its own result
    assert committer.groups == 1
    assert ran == ["a1", "a4", "b0", "b2", "c3"]  # by room, each room's jobs in their order

"""SQLite WAL checkpoints off the committing connections (serving/chat/checkpoint.py): commits
only append to the WAL, the checkpointer's thread copies it back, and no committed row is lost."""

from __future__ import annotations

import os
import sqlite3
import time

import sqlalchemy as sa

from conversations import store_engine
from serving.chat.checkpoint import WalCheckpointer, file_database

PAGES = 1500  # past SQLite's automatic checkpoint (1,000 pages)


def _commit_pages(engine: sa.Engine) -> None:
    """Commit about PAGES pages, a 4 KB row per commit (one page each, at least)."""
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE IF NOT EXISTS blobs (data BLOB NOT NULL)")
    for _ in range(PAGES):
        with engine.begin() as connection:
            connection.exec_driver_sql("INSERT INTO blobs VALUES (zeroblob(4000))")


def _wal_frames(database: str) -> int:
    """Frames in the WAL now (read by a checkpoint of a fresh connection)."""
    connection = sqlite3.connect(database)
    try:
        _busy, frames, _copied = connection.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone()
        return int(frames)
    finally:
        connection.close()


def _rows(database: str) -> int:
    connection = sqlite3.connect(database)
    try:
        return int(connection.execute("SELECT count(*) FROM blobs").fetchone()[0])
    finally:
        connection.close()


def test_commits_leave_the_checkpoints_to_the_thread(tmp_path):
    # Control: a store's engine as store_engine.py makes it checkpoints inside its commits.
    plain = store_engine.create_engine(f"sqlite:///{tmp_path / 'plain.db'}")
    _commit_pages(plain)
    assert _wal_frames(str(tmp_path / "plain.db")) < 1100
    plain.dispose()

    engine = store_engine.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    database = file_database(engine)
    assert database == str(tmp_path / "store.db")
    checkpointer = WalCheckpointer(engine, database, interval_s=3600)
    _commit_pages(engine)  # the thread is not started yet: nobody checkpoints
    assert os.path.getsize(database) < PAGES * 4000 // 10  # the rows are only in the WAL
    checkpointer.start()
    checkpointer.close()  # its last checkpoint
    stats = checkpointer.stats()
    assert stats.checkpoints == 1
    assert stats.max_wal_frames >= PAGES  # every commit's pages were still in the WAL
    assert os.path.getsize(database) >= PAGES * 4000  # the thread copied them into the file
    assert _rows(database) == PAGES
    engine.dispose()


def test_the_thread_checkpoints_while_commits_go_on(tmp_path):
    engine = store_engine.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    database = file_database(engine)
    assert database is not None
    checkpointer = WalCheckpointer(engine, database, interval_s=0.01)
    checkpointer.start()
    try:
        _commit_pages(engine)
        deadline = time.monotonic() + 30
        while checkpointer.stats().checkpoints < 3 and time.monotonic() < deadline:
            time.sleep(0.01)
    finally:
        checkpointer.close()
    assert checkpointer.stats().checkpoints >= 3
    assert _rows(database) == PAGES
    engine.dispose()


def test_the_wal_starts_over_when_the_writer_finishes_a_long_one(tmp_path):
    engine = store_engine.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    database = file_database(engine)
    assert database is not None
    checkpointer = WalCheckpointer(
        engine, database, interval_s=0.01, restart_frames=200, loop_after=5
    )
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE blobs (data BLOB NOT NULL)")
    checkpointer.start()
    try:
        for _ in range(PAGES):  # commits without pause: the thread's passes never finish between
            with engine.begin() as connection:
                connection.exec_driver_sql("INSERT INTO blobs VALUES (zeroblob(4000))")
            checkpointer.after_commit()
    finally:
        checkpointer.close()
    stats = checkpointer.stats()
    assert stats.restarts >= 1
    # The WAL started over: it holds the commits since, not every commit of the run.
    assert stats.max_wal_frames < PAGES and _wal_frames(database) < PAGES
    assert _rows(database) == PAGES
    engine.dispose()


def test_between_commits_the_thread_starts_the_wal_over(tmp_path):
    # A worker's loop writes a group, then computes (the model) without writing: the thread's
    # pass, woken by the commit, copies everything then, and the loop never checkpoints itself.
    engine = store_engine.create_engine(f"sqlite:///{tmp_path / 'store.db'}")
    database = file_database(engine)
    assert database is not None
    checkpointer = WalCheckpointer(
        engine, database, interval_s=0.05, restart_frames=50, loop_after=10**6
    )
    with engine.begin() as connection:
        connection.exec_driver_sql("CREATE TABLE blobs (data BLOB NOT NULL)")
    checkpointer.start()
    try:
        for _ in range(60):
            with engine.begin() as connection:
                for _ in range(10):
                    connection.exec_driver_sql("INSERT INTO blobs VALUES (zeroblob(4000))")
            checkpointer.after_commit()
            time.sleep(0.05)  # the model's batch
    finally:
        checkpointer.close()
    stats = checkpointer.stats()
    assert stats.restarts >= 1 and stats.loop_checkpoints == 0
    assert _rows(database) == 600
    engine.dispose()


def test_only_a_sqlite_file_has_a_checkpointer():
    assert file_database(sa.create_engine("sqlite://")) is None
    assert file_database(sa.create_engine("sqlite:///:memory:")) is None
    assert file_database(sa.create_engine("postgresql+psycopg://u@localhost/db")) is None

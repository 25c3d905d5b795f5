"""The store work of a bot turn (issue 14): two commits, and the dialogue read from memory.

A customer message is one committed transaction before its ack, the prediction with the bot's
reply one more; the model's context comes from the worker's dialogue memory, equal to what the
store (training's rule) gives, and is rebuilt from the store when someone else wrote to the room.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from starlette.applications import Starlette
from starlette.routing import WebSocketRoute
from starlette.testclient import TestClient

from conversations import tables
from conversations.schema import Speaker
from serving.chat.auth import Identity, Role
from serving.chat.group_commit import GroupCommitter
from serving.chat.history import turn_context
from serving.chat.hub import ChatHub
from serving.chat.settings import ChatSettings
from serving.chat.store import ChatStore
from serving.chat.turns import CustomerMessage, CustomerMessageJob
from tests.serving.chat.conftest import token
from tests.serving.chat.test_hub import receive_until
from tests.serving.conftest import CHAT_SECRET

INTENTS = ("card_arrival", "exchange_rate", "change_pin", "top_up_failed")


class RecordingModel:
    """A confident model that notes the context of every call (the served context)."""

    def __init__(self) -> None:
        self.contexts: list[dict[str, Any]] = []

    async def __call__(self, text: str, context: dict[str, Any] | None) -> dict[str, Any]:
        self.contexts.append(dict(context or {}))
        intent = INTENTS[(len(self.contexts) - 1) % len(INTENTS)]
        return {
            "intent": intent,
            "confidence": 0.95,
            "fallback": False,
            "top_k": [{"intent": intent, "confidence": 0.95}],
            "sentiment": {"polarity": 0.0, "subjectivity": 0.0},
            "model": {"name": "intent-classifier", "version": "7"},
        }


@contextlib.contextmanager
def running_hub(store: Path, model: RecordingModel) -> Iterator[tuple[ChatHub, TestClient]]:
    hub = ChatHub(ChatSettings(jwt_secret=CHAT_SECRET, store_url=f"sqlite:///{store}"), model)

    @contextlib.asynccontextmanager
    async def lifespan(app):
        await hub.start()
        yield
        await hub.close()

    app = Starlette(routes=[WebSocketRoute("/ws", hub.serve)], lifespan=lifespan)
    with TestClient(app) as client:
        yield hub, client


def say(customer, text: str, client_msg_id: str) -> tuple[dict, dict]:
    frame = {"type": "chat_message", "data": {"content": text, "client_msg_id": client_msg_id}}
    customer.send_text(json.dumps(frame))
    return receive_until(customer, "ack"), receive_until(customer, "bot_reply")


def test_a_bot_turn_is_two_commits_and_reads_the_dialogue_once(tmp_path):
    model = RecordingModel()
    with running_hub(tmp_path / "store.db", model) as (hub, client):
        engine = hub.store.engine
        commits: list[int] = []
        scans: list[str] = []
        sa.event.listen(engine, "commit", lambda connection: commits.append(1))

        def note_scan(conn, cursor, statement, parameters, context, executemany):
            if "messages.turn <" in statement:  # the room's earlier messages (the dialogue)
                scans.append(statement)

        sa.event.listen(engine, "before_cursor_execute", note_scan)
        with client.websocket_connect(f"/ws?token={token('uma')}") as customer:
            receive_until(customer, "welcome")
            say(customer, "where is my card?", "0")  # opens the support request
            commits.clear()
            scans.clear()
            acks = [say(customer, f"question {n}", str(n))[0] for n in range(1, 5)]
            turn_commits, turn_scans = len(commits), len(scans)
            # Someone else writes to the room: the memory is behind and must be rebuilt.
            room_id = acks[0]["room_id"]
            hub.store.insert_message(room_id, "ann", Speaker.AGENT, "an agent's note", None)
            acks.append(say(customer, "and now?", "5")[0])
    assert turn_commits == 2 * 4  # was 3 a turn: the message, the prediction, the reply
    # The first turn read the room's dialogue from the store; the next three from memory.
    assert turn_scans == 0
    assert len(scans) == 1  # the turn after the agent's note read it again
    # Every context the model got is the one training builds from the stored rows.
    served = model.contexts[1:]
    stored = [turn_context(engine, ack["message_id"]) for ack in acks]
    assert served == stored
    assert stored[-1]["session"]["previous_bot_message"] == "an agent's note"
    assert stored[3]["session"]["previous_intents"] == list(INTENTS)  # the four turns before


def test_a_first_message_opens_its_conversation_in_its_group(tmp_path):
    # A customer's first message opens their conversation inside its group's transaction (it
    # used to take two transactions of the writer thread, queued, and a second group): the
    # other messages of the group commit with it, and a second message of the same customer in
    # the same group joins the conversation the first one opened.
    store = ChatStore(f"sqlite:///{tmp_path / 'store.db'}")
    new, known = Identity("new", Role.CUSTOMER), Identity("known", Role.CUSTOMER)
    store.support.open_conversation(known)
    rollbacks: list[int] = []
    sa.event.listen(store.engine, "rollback", lambda connection: rollbacks.append(1))
    committer = GroupCommitter(store.engine, None)

    async def group() -> list[CustomerMessage]:
        jobs = [
            CustomerMessageJob(store, new, None, "hello", "n1"),
            CustomerMessageJob(store, known, None, "my card has not arrived", "k1"),
            CustomerMessageJob(store, new, None, "are you there?", "n2"),
        ]
        return await asyncio.gather(*(committer.run(job, job.alone) for job in jobs))

    try:
        first, other, second = asyncio.run(group())
        rolled_back = len(rollbacks)  # before the reads below (a read's end is a rollback)
        request = store.support.open_for_customer("new")
        replayed = store.events.replay(new, 0, 100)
    finally:
        store.close()
    assert committer.groups == 1 and rolled_back == 0
    assert first.opened is not None and other.opened is None and second.opened is None
    assert request is not None and request.request_id == first.opened.request.request_id
    assert first.request is not None and first.request.request_id == request.request_id
    assert first.room.room_id == second.room.room_id == request.room_id
    # Replayable like before, and ahead of the message it came with.
    assert [event.type for event in replayed][:2] == ["support_request_created", "new_message"]
    created = replayed[0].data
    assert created == {
        "request_id": request.request_id,
        "room_id": request.room_id,
        "seq": first.opened.seq,
    }
    assert first.opened.seq < first.stored.seq


def test_a_first_message_joins_a_conversation_opened_meanwhile(tmp_path):
    # Another worker opens the customer's conversation between the job's look-up and its insert:
    # the unique index of open requests fails the insert, the group rolls back, and the job run
    # alone puts the message in that conversation; no second request or room is left.
    url = f"sqlite:///{tmp_path / 'store.db'}"
    store, elsewhere = ChatStore(url), ChatStore(url)
    customer = Identity("racer", Role.CUSTOMER)
    opened_elsewhere = []

    def open_elsewhere_first(conn, cursor, statement, parameters, context, executemany):
        if statement.startswith("INSERT INTO chat_rooms") and not opened_elsewhere:
            opened_elsewhere.append(elsewhere.support.open_conversation(customer)[0])

    sa.event.listen(store.engine, "before_cursor_execute", open_elsewhere_first)
    committer = GroupCommitter(store.engine, None)
    job = CustomerMessageJob(store, customer, None, "hello", "r1")
    try:
        sent = asyncio.run(committer.run(job, job.alone))
        with store.engine.connect() as connection:
            requests = connection.execute(
                sa.select(tables.support_requests.c.request_id).where(
                    tables.support_requests.c.customer_id == "racer"
                )
            ).all()
            rooms = connection.execute(
                sa.select(tables.rooms.c.room_id).where(tables.rooms.c.creator_id == "racer")
            ).all()
    finally:
        store.close()
        elsewhere.close()
    assert len(opened_elsewhere) == 1
    assert sent.opened is None and sent.room.room_id == opened_elsewhere[0].room_id
    assert [row[0] for row in requests] == [opened_elsewhere[0].request_id]
    assert [row[0] for row in rooms] == [opened_elsewhere[0].room_id]

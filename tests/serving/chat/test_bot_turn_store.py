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


def test_a_first_message_does_not_roll_back_its_group(tmp_path):
    # A customer's first message finds no open request: the job says so without raising, so the
    # messages of the others in its group commit with the group, not again one by one.
    store = ChatStore(f"sqlite:///{tmp_path / 'store.db'}")
    known = Identity("known", Role.CUSTOMER)
    store.support.open_conversation(known)
    rollbacks: list[int] = []
    sa.event.listen(store.engine, "rollback", lambda connection: rollbacks.append(1))
    committer = GroupCommitter(store.engine, None)

    async def group() -> list[CustomerMessage | None]:
        jobs = [
            CustomerMessageJob(store, Identity("new", Role.CUSTOMER), None, "hello", "n1"),
            CustomerMessageJob(store, known, None, "my card has not arrived", "k1"),
        ]
        return await asyncio.gather(*(committer.run(job, job.alone) for job in jobs))

    try:
        first, other = asyncio.run(group())
    finally:
        store.close()
    assert first is None and other is not None and other.stored.event is not None
    assert committer.groups == 1 and rollbacks == []

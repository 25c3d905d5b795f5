"""The chat store (serving/chat/store.py) on a real PostgreSQL server (tests/postgres.py)."""

from __future__ import annotations

import threading

import pytest
import sqlalchemy as sa

from conversations import tables
from conversations.readers import read_conversation_store
from conversations.schema import Speaker
from serving.chat.auth import BOT_USER_ID, Identity, Role
from serving.chat.bot import HandoffReason
from serving.chat.classification import Classification
from serving.chat.event_log import write_pending
from serving.chat.protocol import RoomType
from serving.chat.store import BotReply, ChatStore, StoredMessage
from serving.chat.support import SupportStatus

CUSTOMER = Identity("customer-pg", Role.CUSTOMER)
AGENT = Identity("agent-pg", Role.AGENT)


@pytest.fixture
def store(postgres_url: str):
    """A chat store on a fresh PostgreSQL database."""
    chat = ChatStore(postgres_url)
    yield chat
    chat.close()


def test_message_and_event_commit_together_and_replay(store: ChatStore) -> None:
    room = store.rooms.create_room("help", RoomType.SUPPORT, CUSTOMER, [BOT_USER_ID])
    sent = store.insert_message(
        room.room_id, CUSTOMER.user_id, Speaker.CUSTOMER, "Where is my card?", "client-1"
    )
    prediction = Classification("card_arrival", 0.9, False, "intent-model", "4")
    store.record_prediction(sent.message_id, prediction, -0.1, 0.3)
    reply = store.insert_message(
        room.room_id,
        BOT_USER_ID,
        Speaker.BOT,
        "It should arrive soon.",
        None,
        BotReply("answer", prediction, 0.0, sent.message_id),
    )
    resent = store.insert_message(
        room.room_id, CUSTOMER.user_id, Speaker.CUSTOMER, "Where is my card?", "client-1"
    )
    label_id = store.record_label(
        sent.message_id, "card_arrival", AGENT.user_id, "Where is my card?"
    )

    assert resent.duplicate and resent.message_id == sent.message_id and resent.seq == sent.seq
    assert reply.seq > sent.seq
    replayed = store.events.replay(CUSTOMER, 0, 100)
    assert [(event.type, event.data["seq"]) for event in replayed] == [
        ("new_message", sent.seq),
        ("bot_reply", reply.seq),
    ]
    assert replayed[1].data["intent"] == "card_arrival" and replayed[1].data["reply_to"] == (
        sent.message_id
    )
    assert store.events.replay(CUSTOMER, reply.seq, 100) == []
    assert store.events.last_seq() == reply.seq
    assert [row["content"] for row in store.events.room_history(room.room_id, 10)] == [
        "Where is my card?",
        "It should arrive soon.",
    ]
    assert [turn.intent for turn in store.customer_turns(room.room_id, room.created_at)] == [
        "card_arrival"
    ]
    assert label_id >= 1
    # The pipeline reads the same rows, the agent's label winning over none.
    frame = read_conversation_store(str(store.engine.url.render_as_string(hide_password=False)))
    frame = frame.set_index("message_id")
    assert frame.loc[sent.message_id, "intent"] == "card_arrival"
    assert frame.loc[sent.message_id, "label_trust"] == "agent"
    assert frame.loc[reply.message_id, "turn"] == "1"  # raw rows are text until validation


def test_a_message_whose_event_fails_is_not_stored(store: ChatStore) -> None:
    room = store.rooms.create_room("help", RoomType.SUPPORT, CUSTOMER, [BOT_USER_ID])
    # A room id longer than the event audience column: PostgreSQL refuses the event row, and
    # the message written before it in the same transaction must go with it.
    with pytest.raises(sa.exc.DataError):
        store.insert_message("r" * 200, CUSTOMER.user_id, Speaker.CUSTOMER, "lost?", "c-x")
    with store.engine.connect() as connection:
        assert connection.scalar(sa.select(sa.func.count()).select_from(tables.messages)) == 0
    assert store.events.last_seq() == 0
    assert store.rooms.room(room.room_id) is not None


def test_escalation_keeps_the_customers_words_up_to_2000_characters(store: ChatStore) -> None:
    request, created = store.support.open_conversation(CUSTOMER, issue_type="card")
    words = "Nobody has answered me for an hour and my account is blocked. " * 32
    words = words[:2000]

    store.support.escalate(request.request_id, words)
    store.support.escalate(request.request_id, "")

    escalated = store.support.get(request.request_id)
    assert created and escalated is not None
    assert escalated.status is SupportStatus.WAITING_AGENT
    assert escalated.handoff_reason == HandoffReason.ESCALATED.value
    assert escalated.escalation_reason == words  # a later escalation without words keeps them
    assert escalated.escalations == 2
    assert escalated.to_wire()["escalation_reason"] == words
    assert [case.request_id for case in store.support.agent_queue()] == [request.request_id]


def test_a_store_made_before_escalation_reasons_gains_the_column(postgres_url: str) -> None:
    engine = sa.create_engine(postgres_url)
    tables.metadata.create_all(engine)
    with engine.begin() as connection:
        connection.execute(sa.text("ALTER TABLE support_requests DROP COLUMN escalation_reason"))
    engine.dispose()

    store = ChatStore(postgres_url)
    try:
        request, _ = store.support.open_conversation(CUSTOMER)
        store.support.escalate(request.request_id, "x" * 2000)
        escalated = store.support.get(request.request_id)
    finally:
        store.close()
    assert escalated is not None and escalated.escalation_reason == "x" * 2000


def test_two_workers_writing_one_room_number_its_turns_once_each(postgres_url: str) -> None:
    # Two service workers (or replicas) each have their own store; on PostgreSQL their writes
    # really run at once, unlike SQLite's one writer per file.
    workers = [ChatStore(postgres_url), ChatStore(postgres_url)]
    room = workers[0].rooms.create_room("busy", RoomType.PUBLIC, CUSTOMER, [AGENT.user_id])
    per_worker = 40

    def send(store: ChatStore, sender: str) -> None:
        for index in range(per_worker):
            store.insert_message(room.room_id, sender, Speaker.CUSTOMER, f"{sender} {index}", None)

    try:
        threads = [
            threading.Thread(target=send, args=(store, sender))
            for store, sender in zip(workers, (CUSTOMER.user_id, AGENT.user_id), strict=True)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        with workers[0].engine.connect() as connection:
            turns = connection.scalars(
                sa.select(tables.messages.c.turn).where(
                    tables.messages.c.conversation_id == room.room_id
                )
            ).all()
    finally:
        for store in workers:
            store.close()
    assert sorted(turns) == list(range(2 * per_worker))


def test_an_event_commits_only_after_every_earlier_seq(store: ChatStore, postgres_url: str) -> None:
    # Worker A has written its events (seq n) and not committed; worker B's event (seq n + 1)
    # must wait, else a client could see n + 1, resume after it and never get n.
    other = ChatStore(postgres_url)
    done: list[int] = []
    try:
        with store.events.begin() as connection:
            first = store.events.append(connection, "user:a", "notice", {"n": 1})
            write_pending(connection)  # as just before the commit
            thread = threading.Thread(
                target=lambda: done.append(other.events.append_event("user:b", "notice", {}))
            )
            thread.start()
            assert waiting_on_a_lock(store.engine), "the second event did not wait"
            assert done == []
        thread.join()
    finally:
        other.close()
    assert done[0] > first.value


def test_events_waiting_for_their_seqs_hold_up_no_other_worker(
    store: ChatStore, postgres_url: str
) -> None:
    # A group commit's jobs run before its events get their seqs: another worker's message
    # commits meanwhile (it used to wait for the whole group), and gets the earlier seq.
    room = store.rooms.create_room("help", RoomType.SUPPORT, CUSTOMER, [BOT_USER_ID])
    other = ChatStore(postgres_url)
    sent: list[StoredMessage] = []
    try:
        with store.events.begin() as connection:
            grouped = store.events.append(connection, "user:a", "notice", {"n": 1})
            thread = threading.Thread(
                target=lambda: sent.append(
                    other.insert_message(room.room_id, BOT_USER_ID, Speaker.BOT, "alone", None)
                )
            )
            thread.start()
            thread.join(timeout=60)  # a hang, not a speed: it waited for the open transaction
            assert sent, "the other worker's message waited for this transaction"
            with pytest.raises(RuntimeError):
                grouped.value  # noqa: B018 (not given before the commit)
        thread.join()
    finally:
        other.close()
    assert sent[0].seq < grouped.value
    with pytest.raises(RuntimeError), store.engine.begin() as connection:
        store.events.append(connection, "user:a", "notice", {})  # would never be written


def waiting_on_a_lock(engine: sa.Engine, attempts: int = 200) -> bool:
    """True once another session of this database waits on a lock (polls pg_stat_activity)."""
    query = sa.text(
        "SELECT count(*) FROM pg_stat_activity"
        " WHERE datname = current_database() AND wait_event_type = 'Lock'"
    )
    for _ in range(attempts):
        with engine.connect() as connection:
            if connection.scalar(query):
                return True
        threading.Event().wait(0.05)
    return False


def test_event_seqs_go_past_32_bits(store: ChatStore) -> None:
    # A busy chat passes 2**31 events within a year; the protocol's seq is 64-bit.
    with store.engine.begin() as connection:
        connection.execute(sa.text("ALTER SEQUENCE chat_events_seq_seq RESTART WITH 3000000000"))
    room = store.rooms.create_room("help", RoomType.SUPPORT, CUSTOMER, [BOT_USER_ID])
    sent = store.insert_message(room.room_id, CUSTOMER.user_id, Speaker.CUSTOMER, "hi", "c-1")

    assert sent.seq == 3_000_000_000
    assert [event.data["seq"] for event in store.events.replay(CUSTOMER, 2**31, 10)] == [sent.seq]
    assert store.message_info(sent.message_id) is not None


def test_a_group_and_a_lone_message_in_one_room_do_not_deadlock(
    store: ChatStore, postgres_url: str
) -> None:
    # A group commit holds its rooms' rows from their messages on and takes the event-order
    # lock at its end; a message written alone on the other worker waits for the room's row
    # and must not hold the event-order lock meanwhile, or the group waits for it in turn
    # (found in CI when the lock came first: one socket's first message lost to "deadlock
    # detected").
    room = store.rooms.create_room("help", RoomType.SUPPORT, CUSTOMER, [BOT_USER_ID])
    other = ChatStore(postgres_url)
    failures: list[BaseException] = []

    def send_alone() -> None:
        try:
            other.insert_message(room.room_id, BOT_USER_ID, Speaker.BOT, "alone", None)
        except BaseException as exc:  # the assertion below reports it
            failures.append(exc)

    try:
        with store.events.begin() as connection:
            store.events.append(connection, "user:a", "notice", {"n": 1})
            store.insert_message_in(
                connection, room.room_id, CUSTOMER.user_id, Speaker.CUSTOMER, "grouped", "g-1"
            )
            thread = threading.Thread(target=send_alone)
            thread.start()
            assert waiting_on_a_lock(store.engine), "the lone message did not wait"
        thread.join()
    finally:
        other.close()
    assert failures == []
    history = store.events.room_history(room.room_id, 10)
    assert [row["content"] for row in history] == ["grouped", "alone"]

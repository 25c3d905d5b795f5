"""SQL tables of the conversation store, shared by the chat tier (writer) and the pipeline (reader).

SQLite by default, any SQLAlchemy URL (e.g. PostgreSQL) in production. Only the declarations:
conversations/store_engine.py opens a store, creating these tables or upgrading an older store's.
"""

from __future__ import annotations

import sqlalchemy as sa

metadata = sa.MetaData()

# Row ids that grow with traffic: 64-bit on PostgreSQL (a 32-bit SERIAL runs out after 2.1 billion
# rows, under a year of busy chat), plain INTEGER on SQLite, whose rowid is 64-bit already and
# whose autoincrement needs exactly `INTEGER PRIMARY KEY`.
RowId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")

messages = sa.Table(
    "messages",
    metadata,
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("conversation_id", sa.String(64), nullable=False, index=True),
    sa.Column("turn", sa.Integer, nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("speaker", sa.String(16), nullable=False),
    sa.Column("user_id", sa.String(128)),
    sa.Column("channel", sa.String(32)),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("intent", sa.String(128)),
    sa.Column("label_source", sa.String(16), nullable=False, server_default="none"),
    sa.Column("context", sa.Text),
)
# A chat message's turn and the conversation's start (`count(*)`, `min(ts)` of its room, every
# message: serving/chat/statements.py TURN_AND_START) read from this index alone, not from every
# row of the room (~1 ms at 3,000 messages on SQLite without it). Added to existing stores at start.
messages_by_conversation_ts = sa.Index(
    "ix_messages_conversation_id_ts", messages.c.conversation_id, messages.c.ts
)

# A label given after the fact (HTTP feedback, an agent's answer); the latest one per text wins.
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("label_id", RowId, primary_key=True, autoincrement=True),
    # As long as /feedback's message_id may be (128); a store made with 64 is widened at start.
    sa.Column("message_id", sa.String(128), index=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("intent", sa.String(128), nullable=False),
    sa.Column("label_source", sa.String(16), nullable=False),
    sa.Column("predicted_intent", sa.String(128)),
    sa.Column("is_new_intent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("user_id", sa.String(128)),
    sa.Column("session_id", sa.String(128)),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    # conversations.schema.LabelTrust; rows from before trust levels existed stay `unverified`.
    sa.Column("trust", sa.String(16), nullable=False, server_default="unverified"),
    # Who gave the label: an agent's user id, or the name of the API key that posted it.
    sa.Column("labelled_by", sa.String(128)),
)

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("prediction_id", RowId, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), index=True),
    sa.Column("intent", sa.String(128), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("fallback", sa.Boolean, nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("polarity", sa.Float),
    sa.Column("subjectivity", sa.Float),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
    # Where the prediction was asked for ("chat", "http"; NULL in stores older than this
    # column, all of them chat). HTTP predictions have no `messages` row: their text (or only
    # its SHA-256, per SERVING_RECORD_TEXT) and request metadata live here.
    sa.Column("channel", sa.String(32), index=True),
    sa.Column("latency_ms", sa.Float),
    sa.Column("text", sa.Text),
    sa.Column("text_sha256", sa.String(64)),
    sa.Column("user_id", sa.String(128)),
    sa.Column("session_id", sa.String(128)),
    # Shadow scoring (serving/shadow.py): a served answer and the challenger's answer to the
    # same message share a `pair_id`; `role` says which is which (conversations.schema
    # .PredictionRole; NULL: served). Shadow rows have channel "shadow", so readers of served
    # traffic by channel never count them.
    sa.Column("role", sa.String(16)),
    sa.Column("pair_id", sa.String(64), index=True),
)


# --- chat tier: rooms, delivery log and support requests (the training loop reads `messages`) ---

rooms = sa.Table(
    "chat_rooms",
    metadata,
    sa.Column("room_id", sa.String(64), primary_key=True),
    sa.Column("name", sa.String(128), nullable=False),
    # public | private | direct | support
    sa.Column("room_type", sa.String(16), nullable=False),
    sa.Column("creator_id", sa.String(128)),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # Rooms are never deleted outright: their messages stay training data.
    sa.Column("deleted_at", sa.DateTime(timezone=True)),
)

room_members = sa.Table(
    "chat_room_members",
    metadata,
    sa.Column("room_id", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.String(128), primary_key=True, index=True),
    sa.Column("role", sa.String(16), nullable=False),
    sa.Column("joined_at", sa.DateTime(timezone=True), nullable=False),
)

# Chat-only facts about a message; the message itself is a row of `messages`.
chat_messages = sa.Table(
    "chat_messages",
    metadata,
    sa.Column("message_id", sa.String(64), primary_key=True),
    sa.Column("room_id", sa.String(64), nullable=False, index=True),
    sa.Column("sender_id", sa.String(128), nullable=False),
    sa.Column("client_msg_id", sa.String(128)),
    sa.Column("seq", RowId),
    sa.UniqueConstraint("sender_id", "client_msg_id", name="uq_chat_sender_client_msg"),
)

# Every delivered event, in one global order: `seq` is what clients resume from.
events = sa.Table(
    "chat_events",
    metadata,
    sa.Column("seq", RowId, primary_key=True, autoincrement=True),
    # room:<id> | user:<id> | role:agent
    sa.Column("audience", sa.String(160), nullable=False, index=True),
    sa.Column("event_type", sa.String(48), nullable=False),
    sa.Column("payload", sa.Text, nullable=False),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
)

support_requests = sa.Table(
    "support_requests",
    metadata,
    sa.Column("request_id", sa.String(64), primary_key=True),
    sa.Column("room_id", sa.String(64), nullable=False, index=True),
    sa.Column("customer_id", sa.String(128), nullable=False, index=True),
    # bot | waiting_agent | with_agent | resolved
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("issue_type", sa.String(64)),
    sa.Column("description", sa.Text),
    # A HandoffReason code; the customer's own words of an escalation go to `escalation_reason`.
    sa.Column("handoff_reason", sa.String(64)),
    sa.Column("handed_off_at", sa.DateTime(timezone=True)),
    sa.Column("escalations", sa.Integer, nullable=False, server_default="0"),
    sa.Column("agent_id", sa.String(128)),
    sa.Column("resolution", sa.Text),
    sa.Column("rating", sa.Integer),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("resolved_at", sa.DateTime(timezone=True)),
    # The free text of the latest `support_escalate` (up to 2,000 characters), None without one.
    sa.Column("escalation_reason", sa.Text),
)

# Statuses of a request not yet resolved (serving/chat/support.py SupportStatus).
OPEN_SUPPORT_STATUSES = ("bot", "waiting_agent", "with_agent")
_open_request = support_requests.c.status.in_(OPEN_SUPPORT_STATUSES)
# At most one open request per customer, whatever number of workers or replicas race to open
# one: a check-then-insert in the application cannot hold that across processes, the store can.
one_open_request_per_customer = sa.Index(
    "uq_support_requests_open_customer",
    support_requests.c.customer_id,
    unique=True,
    sqlite_where=_open_request,
    postgresql_where=_open_request,
)

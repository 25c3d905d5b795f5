"""SQL tables of the conversation store, shared by the chat tier (writer) and the pipeline (reader).

SQLite by default, any SQLAlchemy URL (e.g. PostgreSQL) in production.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

logger = logging.getLogger(__name__)
metadata = sa.MetaData()
# The PostgreSQL advisory lock that serialises schema set-up across processes (any fixed int64).
SCHEMA_LOCK_KEY = 0x5350_4C4F_4F50  # "SPLOOP"

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
# The resolution of an open request closed at upgrade because a newer one of its customer was open.
DUPLICATE_RESOLUTION = (
    "resolved at upgrade: the customer had a newer open support request, which was kept "
    "(one open request per customer)"
)


def create_engine(url: str) -> sa.Engine:
    """An engine for the store at `url`, with its tables created if missing."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    if engine.dialect.name == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_pragmas)
    with _schema_lock(engine):
        metadata.create_all(engine)
        _add_missing_columns(engine)
        _widen_short_columns(engine)
        _add_missing_indexes(engine, predictions)
        _add_missing_indexes(engine, messages)
        _migrate_open_request_index(engine)
    return engine


@contextlib.contextmanager
def _schema_lock(engine: sa.Engine) -> Iterator[None]:
    # Workers, replicas and the pipeline start on one fresh PostgreSQL database at once: two
    # CREATE TABLEs of one name collide in pg_type (a UniqueViolation, not "already exists"), so
    # the first to start creates and upgrades the schema while the others wait, then find it
    # done. SQLite serialises DDL on its file lock already.
    if engine.dialect.name != "postgresql":
        yield
        return
    with engine.connect() as connection:
        connection.execute(sa.select(sa.func.pg_advisory_lock(SCHEMA_LOCK_KEY)))
        try:
            yield
        finally:
            connection.execute(sa.select(sa.func.pg_advisory_unlock(SCHEMA_LOCK_KEY)))


def _add_missing_columns(engine: sa.Engine) -> None:
    # create_all never alters an existing table: a store made by an older release gains the
    # columns added since (all nullable or with a server default), so no row is lost.
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            if column.name in present:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            default = column.server_default
            clause = f" DEFAULT '{default.arg}'" if isinstance(default, sa.DefaultClause) else ""
            null = " NOT NULL" if not column.nullable and clause else ""
            with engine.begin() as connection:
                connection.execute(
                    sa.text(
                        f'ALTER TABLE {table.name} ADD COLUMN "{column.name}" {kind}{clause}{null}'
                    )
                )


def _add_missing_indexes(engine: sa.Engine, table: sa.Table) -> None:
    # create_all adds no index to an existing table: a store made before a column's index
    # (e.g. predictions.pair_id) gains it here. Plain indexes only: a unique one may need its
    # rows fixed first (_migrate_open_request_index).
    present = {found["name"] for found in sa.inspect(engine).get_indexes(table.name)}
    for index in table.indexes:
        if index.name not in present and not index.unique:
            with engine.begin() as connection:
                connection.execute(sa.schema.CreateIndex(index, if_not_exists=True))


def _widen_short_columns(engine: sa.Engine) -> None:
    # A column made shorter by an older release is widened to today's length; PostgreSQL would
    # otherwise refuse a longer value (SQLite never enforces VARCHAR lengths). Widening a
    # VARCHAR rewrites no row.
    if engine.dialect.name != "postgresql":
        return
    inspector = sa.inspect(engine)
    for table in metadata.sorted_tables:
        present = {column["name"]: column["type"] for column in inspector.get_columns(table.name)}
        for column in table.columns:
            wanted = getattr(column.type, "length", None)
            found = getattr(present.get(column.name), "length", None)
            if wanted is None or found is None or found >= wanted:
                continue
            kind = column.type.compile(dialect=engine.dialect)
            with engine.begin() as connection:
                connection.execute(
                    sa.text(f'ALTER TABLE {table.name} ALTER COLUMN "{column.name}" TYPE {kind}')
                )


def _migrate_open_request_index(engine: sa.Engine) -> None:
    # create_all adds no index to an existing table. A store of an older release may hold several
    # open requests of one customer (the race this index closes): resolve all but the newest, as
    # `open_for_customer` always served the newest, then build the index, in one transaction so
    # that no duplicate slips in between and racing workers do it once.
    index = one_open_request_per_customer
    present = {found["name"] for found in sa.inspect(engine).get_indexes(support_requests.name)}
    if index.name in present:
        return
    with engine.begin() as connection:
        if engine.dialect.name == "postgresql":
            # Blocks writes to the table (not reads) and a second worker's migration until commit.
            connection.execute(sa.text("LOCK TABLE support_requests IN SHARE ROW EXCLUSIVE MODE"))
        # On SQLite this UPDATE takes the file's write lock, held to commit.
        closed = _resolve_duplicate_open_requests(connection)
        connection.execute(sa.schema.CreateIndex(index, if_not_exists=True))
    for request_id, customer_id in closed:
        logger.warning(
            "support request %s of customer %s resolved at upgrade: the customer had a newer "
            "open request (one open request per customer)",
            request_id,
            customer_id,
        )


def _resolve_duplicate_open_requests(connection: sa.Connection) -> list[tuple[str, str]]:
    """Resolve every open request that has a newer open one of its customer; (id, customer)s."""
    requests, newer = support_requests, support_requests.alias("newer")
    has_newer = (
        sa.select(newer.c.request_id)
        .where(
            newer.c.customer_id == requests.c.customer_id,
            newer.c.status.in_(OPEN_SUPPORT_STATUSES),
            sa.or_(
                newer.c.created_at > requests.c.created_at,
                sa.and_(
                    newer.c.created_at == requests.c.created_at,
                    newer.c.request_id > requests.c.request_id,
                ),
            ),
        )
        .exists()
    )
    result = connection.execute(
        sa.update(requests)
        .where(_open_request, has_newer)
        .values(
            status="resolved",
            resolution=DUPLICATE_RESOLUTION,
            resolved_at=datetime.now(UTC),
        )
        .returning(requests.c.request_id, requests.c.customer_id)
    )
    return [(row.request_id, row.customer_id) for row in result]


def _sqlite_pragmas(dbapi_connection: object, _record: object) -> None:
    # Several processes (pipeline, service workers, replicas) share one SQLite file: WAL lets
    # readers run beside a writer and the busy timeout queues writers instead of failing them.
    cursor = dbapi_connection.cursor()  # type: ignore[attr-defined]
    cursor.execute("PRAGMA journal_mode=WAL")
    cursor.execute("PRAGMA busy_timeout=10000")
    # NORMAL in WAL mode survives a killed process (the acceptance bar), not a power cut:
    # deployments that need that use PostgreSQL.
    cursor.execute("PRAGMA synchronous=NORMAL")
    cursor.close()

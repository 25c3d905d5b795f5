"""Open the conversation store: an engine whose tables (conversations/tables.py) exist and match.

A store made by an older release is upgraded in place when it is opened, losing no row: missing
columns and indexes are added, short columns widened, and the unique index of open support
requests built once the duplicates it forbids are resolved. Schema set-up is serialised across
the processes that open one store at once (workers, replicas, the pipeline).
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import sqlalchemy as sa

from conversations.tables import (
    OPEN_SUPPORT_STATUSES,
    messages,
    metadata,
    one_open_request_per_customer,
    predictions,
    support_requests,
)

logger = logging.getLogger(__name__)
# The PostgreSQL advisory lock that serialises schema set-up across processes (any fixed int64).
SCHEMA_LOCK_KEY = 0x5350_4C4F_4F50  # "SPLOOP"
# The resolution of an open request closed at upgrade because a newer one of its customer was open.
DUPLICATE_RESOLUTION = (
    "resolved at upgrade: the customer had a newer open support request, which was kept "
    "(one open request per customer)"
)


def create_engine(url: str) -> sa.Engine:
    """An engine for the store at `url`: its tables created if missing, an older store upgraded."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    # Errors name the statement, never its values: a store error is logged (a locked SQLite
    # store, at every retry of the prediction log), and the values are customers' messages.
    engine = sa.create_engine(url, hide_parameters=True)
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
        .where(requests.c.status.in_(OPEN_SUPPORT_STATUSES), has_newer)
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

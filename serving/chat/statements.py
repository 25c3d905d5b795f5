"""The SQL of a bot turn's hot path, built once and executed with named parameters.

SQLAlchemy builds and keys a statement each time one is written as `.where(column == value)` or
`.values(...)`: for a chat message that cost more CPU than SQLite's own work. Measured on this
machine, an insert built per call took ~0.9 ms, the same insert built once ~0.15 ms
(bench/README.md, chat section). Rows are the same either way.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from conversations import tables


class DriverInsert:
    """A one-row INSERT of fixed columns; on SQLite run on the driver's connection directly.

    Even built once, a statement through `Connection.execute` costs ~40 us of SQLAlchemy's
    execution context per row on this machine, about twice SQLite's insert (bench/README.md,
    chat section). On SQLite this runs the same SQL on the sqlite3 connection of the caller's
    transaction, each value bound as SQLAlchemy binds it for the column (its type's bind
    processor, e.g. timestamps), so the row is the same. Other databases take the usual path.
    """

    def __init__(self, table: sa.Table, columns: Sequence[str]) -> None:
        """`columns`: the columns a row gives (all of those with a Python-side default)."""
        missing = [c.name for c in table.columns if c.default is not None and c.name not in columns]
        if missing:  # the usual path would fill these in; the driver would not
            raise ValueError(f"{table.name}: give {missing} too (they have Python defaults)")
        self.table = table
        self.columns = tuple(columns)
        self.statement = sa.insert(table)
        key = list(table.primary_key.columns)
        self._integer_key = len(key) == 1 and isinstance(key[0].type, sa.Integer)
        self._sqlite: tuple[str, tuple[Callable[[Any], Any] | None, ...]] | None = None

    def execute(self, connection: sa.Connection, row: Mapping[str, Any]) -> int:
        """Insert `row` (a value for each column); returns the new row's key when that is an
        integer the database assigns (`chat_events.seq`), else 0."""
        if connection.dialect.name != "sqlite":
            key = connection.execute(self.statement, dict(row)).inserted_primary_key
            return key[0] if key and isinstance(key[0], int) else 0
        sql, processors = self._sqlite or self._compile(connection.dialect)
        values = [
            row[name] if process is None else process(row[name])
            for name, process in zip(self.columns, processors, strict=True)
        ]
        driver = connection.connection.driver_connection
        assert driver is not None  # an open connection inside the caller's transaction
        dbapi = connection.dialect.loaded_dbapi
        try:
            cursor = driver.execute(sql, values)
            # The rowid: the key of a table whose key is an INTEGER PRIMARY KEY (its alias).
            return int(cursor.lastrowid or 0) if self._integer_key else 0
        except dbapi.Error as exc:
            # As SQLAlchemy raises it (a resend's unique key: sa.exc.IntegrityError).
            raise sa.exc.DBAPIError.instance(sql, values, exc, dbapi.Error) from exc

    def _compile(self, dialect: sa.Dialect) -> tuple[str, tuple[Callable[[Any], Any] | None, ...]]:
        quote = dialect.identifier_preparer.quote
        names = ", ".join(quote(name) for name in self.columns)
        marks = ", ".join("?" for _ in self.columns)
        sql = f"INSERT INTO {quote(self.table.name)} ({names}) VALUES ({marks})"
        processors = tuple(
            self.table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in self.columns
        )
        self._sqlite = (sql, processors)
        return self._sqlite


class DriverRow:
    """A SELECT of rows; on SQLite run on the driver's connection (see `DriverInsert`).

    The SQL is SQLAlchemy's own, compiled once; parameters are bound and columns read back with
    their types' processors (a timestamp comes back a `datetime`, as from `Connection.execute`).
    """

    def __init__(self, statement: sa.Select[*tuple[Any, ...]]) -> None:
        """`statement`: a select whose parameters are all `bindparam`s given at execution."""
        self.statement = statement
        # The selected columns' names, in the order of a row's values.
        self.names = tuple(statement.selected_columns.keys())
        self._sqlite: tuple[str, tuple[str, ...], tuple[Any, ...], tuple[Any, ...]] | None = None
        self._constants: dict[str, Any] = {}  # values written into the statement (LIMIT 1, ...)

    def first(self, connection: sa.Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row's values, or None."""
        if connection.dialect.name != "sqlite":
            row = connection.execute(self.statement, dict(params)).first()
            return None if row is None else tuple(row)
        found = self._driver_rows(connection, params, first=True)
        return found[0] if found else None

    def all(self, connection: sa.Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row's values."""
        if connection.dialect.name != "sqlite":
            return [tuple(row) for row in connection.execute(self.statement, dict(params))]
        return self._driver_rows(connection, params, first=False)

    def _driver_rows(
        self, connection: sa.Connection, params: Mapping[str, Any], first: bool
    ) -> list[tuple[Any, ...]]:
        sql, names, binds, results = self._sqlite or self._compile(connection.dialect)
        given = {**self._constants, **params}
        values = [
            given[name] if bind is None else bind(given[name])
            for name, bind in zip(names, binds, strict=True)
        ]
        driver = connection.connection.driver_connection
        assert driver is not None  # an open connection inside the caller's transaction
        dbapi = connection.dialect.loaded_dbapi
        try:
            cursor = driver.execute(sql, values)
            rows = [found] if first and (found := cursor.fetchone()) else cursor.fetchall()
        except dbapi.Error as exc:
            raise sa.exc.DBAPIError.instance(sql, values, exc, dbapi.Error) from exc
        return [
            tuple(
                value if result is None else result(value)
                for value, result in zip(row, results, strict=True)
            )
            for row in rows
        ]

    def _compile(
        self, dialect: sa.Dialect
    ) -> tuple[str, tuple[str, ...], tuple[Any, ...], tuple[Any, ...]]:
        compiled = self.statement.compile(dialect=dialect)
        names = tuple(compiled.positiontup or ())
        binds = tuple(
            compiled.binds[name].type.dialect_impl(dialect).bind_processor(dialect)
            for name in names
        )
        results = tuple(
            column.type.dialect_impl(dialect).result_processor(dialect, None)
            for column in self.statement.selected_columns
        )
        self._constants = {
            name: compiled.binds[name].effective_value
            for name in names
            if not compiled.binds[name].required
        }
        self._sqlite = (compiled.string, names, binds, results)
        return self._sqlite


_rooms, _members, _messages = tables.rooms, tables.room_members, tables.messages
_requests, _events = tables.support_requests, tables.events

# serving/chat/store.py: a message's transaction.
LOCK_ROOM = (
    sa.select(_rooms.c.room_id).where(_rooms.c.room_id == sa.bindparam("room_id")).with_for_update()
)
TURN_AND_START = DriverRow(
    sa.select(sa.func.count(), sa.func.min(_messages.c.ts)).where(
        _messages.c.conversation_id == sa.bindparam("room_id")
    )
)
INSERT_CHAT_MESSAGE = DriverInsert(
    tables.chat_messages, ("message_id", "room_id", "sender_id", "client_msg_id", "seq")
)
# The rows conversations/writer.py builds (`message_row`, `prediction_row`), on the driver: through
# `Connection.execute` these two were ~10 % of a bot turn's CPU (bench/README.md, chat section).
INSERT_MESSAGE = DriverInsert(_messages, tuple(c.name for c in _messages.columns))
INSERT_PREDICTION = DriverInsert(
    tables.predictions, tuple(c.name for c in tables.predictions.columns if not c.primary_key)
)
# serving/chat/event_log.py: an event as it is appended (SQLite); a PostgreSQL transaction's
# events and their messages' rows at its end, one statement each (seqs in the rows' order).
INSERT_EVENT = DriverInsert(_events, ("audience", "event_type", "payload", "ts"))
INSERT_EVENTS = sa.insert(_events).returning(_events.c.seq, sort_by_parameter_order=True)
INSERT_CHAT_MESSAGES = sa.insert(tables.chat_messages)
# serving/chat/rooms.py: a live room with its members, one row per member (oldest first), in
# one statement: the room and its members were two for every customer message.
LIVE_ROOM_MEMBERS = DriverRow(
    sa.select(_rooms, _members.c.user_id.label("member_id"))
    .select_from(_rooms.outerjoin(_members, _members.c.room_id == _rooms.c.room_id))
    .where(_rooms.c.room_id == sa.bindparam("room_id"), _rooms.c.deleted_at.is_(None))
    .order_by(_members.c.joined_at, _members.c.user_id)
)
MEMBER_IDS = (
    sa.select(_members.c.user_id)
    .where(_members.c.room_id == sa.bindparam("room_id"))
    .order_by(_members.c.joined_at, _members.c.user_id)
)
# serving/chat/turns.py: the customer's open request, a room's newest one, a request's status.
# `status = a OR status = b ...`, not `IN (...)`: an IN list is re-rendered at every execution.
OPEN_REQUEST = DriverRow(
    sa.select(_requests)
    .where(
        _requests.c.customer_id == sa.bindparam("customer_id"),
        sa.or_(*(_requests.c.status == status for status in tables.OPEN_SUPPORT_STATUSES)),
    )
    .order_by(_requests.c.created_at.desc())
    .limit(1)
)
ROOM_REQUEST = DriverRow(
    sa.select(_requests)
    .where(_requests.c.room_id == sa.bindparam("room_id"))
    .order_by(_requests.c.created_at.desc())
    .limit(1)
)
REQUEST_STATUS = DriverRow(
    sa.select(_requests.c.status).where(_requests.c.request_id == sa.bindparam("request_id"))
)

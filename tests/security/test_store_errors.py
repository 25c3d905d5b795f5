"""A store error never carries the values of its statement: customers' messages stay out of logs.

The chat hub logs a failed frame's traceback and the prediction log's writer logs every failed
write (a locked SQLite store: at each retry); SQLAlchemy put the statement's parameters, the
customers' texts, in the error's message. Real SQLite and PostgreSQL stores.
"""

from __future__ import annotations

import pytest
import sqlalchemy as sa

from conversations import store_engine

CUSTOMER_TEXT = "my card 4111 1111 1111 1111 was charged twice\n[INFO] forged"


def test_a_store_error_names_the_statement_not_the_customers_text(
    sqlite_or_postgres_url: str,
) -> None:
    engine = store_engine.create_engine(sqlite_or_postgres_url)
    try:
        with pytest.raises(sa.exc.DBAPIError) as failed, engine.begin() as connection:
            connection.execute(
                sa.text("INSERT INTO no_such_table (text) VALUES (:text)"),
                [{"text": CUSTOMER_TEXT}, {"text": CUSTOMER_TEXT}],
            )
    finally:
        engine.dispose()
    message = str(failed.value)
    assert "no_such_table" in message  # the statement is still named
    assert "4111" not in message and "forged" not in message

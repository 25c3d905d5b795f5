"""SQL tables of the conversation store, shared by the chat tier (writer) and the pipeline (reader).

SQLite by default, any SQLAlchemy URL (e.g. PostgreSQL) in production.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

metadata = sa.MetaData()

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

# A label given after the fact (HTTP feedback, an agent's answer); the latest one per text wins.
labels = sa.Table(
    "labels",
    metadata,
    sa.Column("label_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), index=True),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("intent", sa.String(128), nullable=False),
    sa.Column("label_source", sa.String(16), nullable=False),
    sa.Column("predicted_intent", sa.String(128)),
    sa.Column("is_new_intent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("user_id", sa.String(128)),
    sa.Column("session_id", sa.String(128)),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
)

predictions = sa.Table(
    "predictions",
    metadata,
    sa.Column("prediction_id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("message_id", sa.String(64), index=True),
    sa.Column("intent", sa.String(128), nullable=False),
    sa.Column("confidence", sa.Float, nullable=False),
    sa.Column("fallback", sa.Boolean, nullable=False),
    sa.Column("model_name", sa.String(128), nullable=False),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("polarity", sa.Float),
    sa.Column("subjectivity", sa.Float),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False, index=True),
)


def create_engine(url: str) -> sa.Engine:
    """An engine for the store at `url`, with its tables created if missing."""
    parsed = sa.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
    engine = sa.create_engine(url)
    metadata.create_all(engine)
    return engine

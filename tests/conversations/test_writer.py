"""conversations/writer.py: the one module that writes messages, predictions and labels."""

from __future__ import annotations

import ast
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import sqlalchemy as sa

from conversations import store_engine, tables
from conversations.readers import read_conversation_store
from conversations.schema import LabelSource, LabelTrust, Speaker
from conversations.writer import (
    LabelRecord,
    MessageRecord,
    PredictionRecord,
    insert_label,
    insert_labels,
    insert_message,
    insert_prediction,
    insert_prediction_rows,
)
from tests.conversations.awkward_predictions import awkward_prediction_rows

REPO_ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("conversations", "features", "models", "serving", "monitoring", "pipelines")
CONVERSATION_TABLES = {"messages", "labels", "predictions"}
WRITES = {"insert", "update", "delete"}
TS = datetime(2026, 11, 28, 12, 0, tzinfo=UTC)


def tables_written(source: str) -> set[str]:
    """Conversation tables the code writes.

    `sa.insert(tables.labels)`, `sa.insert(labels)` (an alias of the table), `insert(labels)`
    and `tables.labels.insert()`; not `some_list.insert(...)` or `a_dict.update(labels)`.
    """
    written = set()
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call):
            continue
        func = node.func
        if isinstance(func, ast.Attribute) and func.attr in WRITES:
            if isinstance(func.value, ast.Name) and func.value.id in ("sa", "sqlalchemy"):
                target = node.args[0] if node.args else None  # sa.insert(table)
            else:
                target = func.value  # table.insert(): only `tables.<name>` below
                if not isinstance(target, ast.Attribute):
                    continue
        elif isinstance(func, ast.Name) and func.id in WRITES:
            target = node.args[0] if node.args else None  # from sqlalchemy import insert
        else:
            continue
        name = getattr(target, "attr", None) or getattr(target, "id", None)
        if name in CONVERSATION_TABLES:
            written.add(name)
    return written


def writers_of_conversation_tables() -> list[str]:
    """Every `path: table` where production code writes messages, labels or predictions."""
    return sorted(
        f"{path.relative_to(REPO_ROOT)}: {table}"
        for package in PACKAGES
        for path in (REPO_ROOT / package).rglob("*.py")
        for table in tables_written(path.read_text(encoding="utf-8"))
    )


def test_the_writer_finder_sees_both_spellings() -> None:
    assert tables_written("sa.insert(tables.labels).values(intent='x')") == {"labels"}
    assert tables_written("tables.messages.insert()") == {"messages"}
    assert tables_written("conn.execute(sa.update(tables.predictions))") == {"predictions"}
    assert tables_written("messages = tables.messages\nsa.insert(messages)") == {"messages"}
    assert tables_written("insert(labels)") == {"labels"}
    quiet = (
        "sa.insert(tables.events); sa.select(tables.labels); labels.insert(0, 1); d.update(labels)"
    )
    assert tables_written(quiet) == set()


def test_only_the_writer_module_writes_the_conversation_tables() -> None:
    assert writers_of_conversation_tables() == [
        "conversations/writer.py: labels",
        "conversations/writer.py: messages",
        "conversations/writer.py: predictions",
    ]


def test_records_refuse_values_outside_the_schema() -> None:
    with pytest.raises(ValueError, match="'sure'"):
        LabelRecord("hi", "greet", LabelSource.AGENT, "sure", TS)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="'robot'"):
        MessageRecord("m", "c", 0, TS, "robot", "hi")  # type: ignore[arg-type]


def test_what_the_writer_stores_is_what_training_reads(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    engine = store_engine.create_engine(url)
    with engine.begin() as connection:
        insert_message(
            connection,
            MessageRecord(
                "m1",
                "room",
                0,
                TS,
                Speaker.CUSTOMER,
                "my card is lost",
                "ann",
                "chat",
                context={"session": {"message_count": 0}},
            ),
        )
        insert_prediction(
            connection,
            PredictionRecord("m1", "lost_or_stolen_card", 0.9, False, "intent", "3", TS, -0.1, 0.4),
        )
        agent = LabelRecord(
            "my card is lost",
            "card_lost",
            LabelSource.AGENT,
            LabelTrust.AGENT,
            TS,
            message_id="m1",
            predicted_intent="lost_or_stolen_card",
            labelled_by="agent-7",
        )
        assert insert_label(connection, agent) == 1
        feedback = LabelRecord(
            "where is my refund",
            "refund",
            LabelSource.FEEDBACK,
            LabelTrust.SERVICE,
            TS,
            session_id="s1",
            labelled_by="chat-backend",
        )
        assert insert_labels(connection, [feedback]) == 1
        prediction = connection.execute(sa.select(tables.predictions)).mappings().one()
        labels = connection.execute(sa.select(tables.labels)).mappings().all()
    engine.dispose()
    assert (prediction["model_version"], prediction["polarity"]) == ("3", -0.1)
    assert [(row["trust"], row["labelled_by"]) for row in labels] == [
        ("agent", "agent-7"),
        ("service", "chat-backend"),
    ]
    rows = read_conversation_store(url).set_index("message_id")
    assert rows.loc["m1", ["intent", "label_source", "label_trust"]].tolist() == [
        "card_lost",
        "agent",
        "agent",
    ]
    assert json.loads(rows.loc["m1", "context"]) == {"session": {"message_count": 0}}
    assert rows.loc["label-2", ["text", "label_trust", "conversation_id"]].tolist() == [
        "where is my refund",
        "service",
        "s1",
    ]


def _stored_predictions(engine: sa.Engine) -> list[tuple[object, ...]]:
    # Every column with its SQLite storage class, as the file holds it (no type processing).
    columns = [c.name for c in tables.predictions.columns]
    listed = ", ".join(f"typeof({name}), {name}" for name in columns)
    with engine.connect() as connection:
        query = f"SELECT {listed} FROM predictions ORDER BY prediction_id"
        return [tuple(row) for row in connection.exec_driver_sql(query)]


def test_a_prediction_batch_is_one_statement_a_chunk_and_stores_what_sqlalchemy_would(
    tmp_path: Path,
) -> None:
    # 515 rows = chunks of 512 and 3. executemany (one GIL hand-off a row, bench/README.md
    # "Cost of the prediction log") is the reference for the values, not the path.
    rows = awkward_prediction_rows(515)
    batched = store_engine.create_engine(f"sqlite:///{tmp_path / 'batched.db'}")
    reference = store_engine.create_engine(f"sqlite:///{tmp_path / 'reference.db'}")
    statements: list[tuple[int, bool]] = []  # (rows - 1, executemany) a statement

    @sa.event.listens_for(batched, "before_cursor_execute")
    def count(_conn, _cursor, statement: str, _params, _context, executemany: bool) -> None:
        if statement.startswith("INSERT INTO predictions"):
            statements.append((statement.count("), ("), executemany))

    with batched.begin() as connection:
        assert insert_prediction_rows(connection, rows) == 515
    with reference.begin() as connection:
        connection.execute(sa.insert(tables.predictions), rows)
    assert statements == [(511, False), (2, False)]
    stored = _stored_predictions(batched)
    assert stored == _stored_predictions(reference)
    assert len(stored) == 515
    with batched.connect() as connection:
        texts = connection.execute(
            sa.select(tables.predictions.c.text, tables.predictions.c.text_sha256).order_by(
                tables.predictions.c.prediction_id
            )
        ).all()
    batched.dispose()
    reference.dispose()
    assert [(row["text"], row["text_sha256"]) for row in rows] == [tuple(t) for t in texts]

"""Durable feedback: a corrected label written to the conversation store for the next training."""

from __future__ import annotations

from datetime import UTC, datetime

from conversations import store_engine
from conversations.schema import LabelSource, LabelTrust
from conversations.writer import LabelRecord, insert_label


class FeedbackStore:
    """Writes feedback labels (conversations/writer.py), committed before the caller answers."""

    def __init__(self, url: str) -> None:
        self.engine = store_engine.create_engine(url)

    def record(
        self,
        text: str,
        true_intent: str,
        predicted_intent: str | None,
        is_new_intent: bool,
        message_id: str | None = None,
        user_id: str | None = None,
        session_id: str | None = None,
        *,
        trust: LabelTrust,
        labelled_by: str | None = None,
    ) -> int:
        """Store one label with the trust level of the credential that gave it; returns its id."""
        label = LabelRecord(
            text=text,
            intent=true_intent,
            label_source=LabelSource.FEEDBACK,
            trust=trust,
            ts=datetime.now(UTC),
            message_id=message_id,
            predicted_intent=predicted_intent,
            is_new_intent=is_new_intent,
            user_id=user_id,
            session_id=session_id,
            labelled_by=labelled_by,
        )
        with self.engine.begin() as connection:
            return insert_label(connection, label)

    def close(self) -> None:
        """Release the connection pool."""
        self.engine.dispose()

"""When new data is worth a training run: the new-conversations sensor's rule (issue 12).

The sensor used to fire whenever the store's fingerprint changed, that is on every chat message.
A run now starts when a labelled source file changes (a batch dropped in), when a label arrives
(agents or feedback: what the next model learns from), or once `NEW_DATA_MIN_MESSAGES` customer
messages have come in since the last run the sensor requested.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path

import sqlalchemy as sa

from conversations import store_engine, tables
from conversations.schema import LabelTrust, Speaker


@dataclass(frozen=True)
class NewDataState:
    """What the sources held at one evaluation: the files' fingerprint and the store's counts."""

    files: str
    messages: int  # customer messages in the store
    labels: int  # usable labels: the labels table (not unverified) and labelled messages

    def to_cursor(self) -> str:
        """The sensor's cursor."""
        return json.dumps(asdict(self), sort_keys=True)

    @classmethod
    def from_cursor(cls, cursor: str | None) -> NewDataState | None:
        """The state a cursor recorded; None for no cursor or an older sensor's (a hash)."""
        try:
            document = json.loads(cursor) if cursor else None
            return cls(**document) if isinstance(document, dict) else None
        except (ValueError, TypeError):
            return None

    @property
    def key(self) -> str:
        """A short run key for this state."""
        return hashlib.sha256(self.to_cursor().encode()).hexdigest()[:16]


@dataclass(frozen=True)
class NewDataDecision:
    """Whether to request a training run, why, and the cursor to keep."""

    run: bool
    reason: str
    cursor: NewDataState


def decide(previous: NewDataState, current: NewDataState, min_messages: int) -> NewDataDecision:
    """Run on changed files, any new label, or at least `min_messages` new customer messages.

    A skip keeps the previous counts so that messages add up across evaluations; counts that
    shrank (a retention purge) become the new base instead.
    """
    new_messages = current.messages - previous.messages
    new_labels = current.labels - previous.labels
    if current.files != previous.files:
        return NewDataDecision(True, "conversation or labelled files changed", current)
    if new_labels > 0:
        return NewDataDecision(True, f"{new_labels} new labels", current)
    if new_messages >= min_messages:
        return NewDataDecision(True, f"{new_messages} new customer messages", current)
    base = NewDataState(
        previous.files,
        min(previous.messages, current.messages),
        min(previous.labels, current.labels),
    )
    return NewDataDecision(
        False,
        f"{max(new_messages, 0)} new customer messages (a run needs {min_messages}) "
        "and no new labels or files",
        base,
    )


def files_fingerprint(paths: Sequence[Path]) -> str:
    """Changes whenever one of the files changes, appears or goes."""
    parts = [f"{path}:{path.stat().st_size}:{path.stat().st_mtime_ns}" for path in paths]
    return hashlib.sha256("\n".join(parts).encode()).hexdigest()[:16]


def read_state(paths: Sequence[Path], store_url: str | None) -> NewDataState:
    """The files' fingerprint and the store's customer-message and usable-label counts."""
    if not store_url:
        return NewDataState(files_fingerprint(paths), 0, 0)
    messages, labels = tables.messages, tables.labels
    engine = store_engine.create_engine(store_url)
    count = sa.select(sa.func.count())
    with engine.connect() as connection:
        customer = connection.scalar(
            count.select_from(messages).where(messages.c.speaker == Speaker.CUSTOMER.value)
        )
        labelled_messages = connection.scalar(
            count.select_from(messages).where(messages.c.intent.is_not(None))
        )
        given = connection.scalar(
            count.select_from(labels).where(labels.c.trust != LabelTrust.UNVERIFIED.value)
        )
    engine.dispose()
    return NewDataState(
        files_fingerprint(paths), int(customer or 0), int(labelled_messages or 0) + int(given or 0)
    )

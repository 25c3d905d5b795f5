"""The "label these" queue: candidate new intents found among fallback messages, in the store.

A monitoring run publishes the clusters it found (monitoring/new_intents.py) with their member
messages; the agent console lists the open ones and an agent names one (serving/chat/
new_intents.py). Naming a cluster writes one `labels` row per member through
conversations/writer.py (label_source `agent`, trust `agent`), the path every agent label takes
into the next run's training examples, and closes the cluster, all in one transaction.

The two tables have their own metadata: only the monitoring run creates them (one process), so
chat workers starting together never race to create them; a store without them has an empty queue.
"""

from __future__ import annotations

import json
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

import sqlalchemy as sa

from conversations.schema import LabelSource, LabelTrust
from conversations.store_reader import iso_utc
from conversations.writer import LabelRecord, insert_labels

queue_metadata = sa.MetaData()
clusters_table = sa.Table(
    "intent_clusters",
    queue_metadata,
    sa.Column("cluster_id", sa.String(64), primary_key=True),  # <run id>-c<n>
    sa.Column("run_id", sa.String(64), nullable=False, index=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("model_version", sa.String(32), nullable=False),
    sa.Column("known_intents", sa.Text, nullable=False),  # JSON list: the model's intents
    sa.Column("size", sa.Integer, nullable=False),
    sa.Column("previous_size", sa.Integer, nullable=False),
    sa.Column("trend", sa.String(16), nullable=False),
    sa.Column("top_terms", sa.Text, nullable=False),  # JSON list
    sa.Column("status", sa.String(16), nullable=False, index=True),
    sa.Column("intent", sa.String(128)),
    sa.Column("is_new_intent", sa.Boolean),
    sa.Column("labelled_by", sa.String(128)),
    sa.Column("labelled_at", sa.DateTime(timezone=True)),
)
# A cluster's messages, nearest its centre first.
members_table = sa.Table(
    "intent_cluster_members",
    queue_metadata,
    sa.Column("cluster_id", sa.String(64), primary_key=True),
    sa.Column("position", sa.Integer, primary_key=True),
    sa.Column("message_id", sa.String(128), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("channel", sa.String(32)),
    sa.Column("predicted_intent", sa.String(128)),
    sa.Column("ts", sa.DateTime(timezone=True), nullable=False),
)
# A new intent's name: lower-case words joined by "_", like the data set's (card_arrival).
NEW_INTENT_NAME = re.compile(r"^[a-z][a-z0-9_]{0,63}$")


class ClusterStatus(StrEnum):
    """Where a cluster is in the queue."""

    OPEN = "open"
    LABELLED = "labelled"
    SUPERSEDED = "superseded"  # a newer monitoring run published its own clusters


class QueueError(ValueError):
    """A label the queue refuses; `code` is HTTP-like (400, 404, 409)."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


@dataclass(frozen=True)
class QueuedMember:
    """A fallback message of a cluster."""

    message_id: str
    text: str
    ts: datetime
    channel: str | None = None
    predicted_intent: str | None = None


@dataclass(frozen=True)
class QueuedCluster:
    """A candidate new intent as the queue holds it."""

    cluster_id: str
    run_id: str
    created_at: datetime
    model_version: str
    known_intents: tuple[str, ...]
    size: int
    previous_size: int
    trend: str
    top_terms: tuple[str, ...]
    members: tuple[QueuedMember, ...]
    status: ClusterStatus = ClusterStatus.OPEN

    def to_wire(self, samples: int) -> dict[str, object]:
        """What the agent console shows: the cluster and its first `samples` distinct messages
        (nearest the centre; an agent may leave out the ones that do not belong)."""
        seen: dict[str, QueuedMember] = {}
        for member in self.members:
            seen.setdefault(member.text.casefold(), member)
        return {
            "cluster_id": self.cluster_id,
            "size": self.size,
            "previous_size": self.previous_size,
            "trend": self.trend,
            "top_terms": list(self.top_terms),
            "model_version": self.model_version,
            "found_at": iso_utc(self.created_at),
            "samples": [
                {"message_id": m.message_id, "text": m.text} for m in list(seen.values())[:samples]
            ],
        }


@dataclass(frozen=True)
class ClusterLabel:
    """An agent's name for a cluster; `excluded` members do not belong and stay unlabelled."""

    cluster_id: str
    intent: str
    is_new_intent: bool
    agent_id: str
    at: datetime
    excluded: frozenset[str] = frozenset()


def ensure_tables(engine: sa.Engine) -> None:
    """Create the queue's tables if missing (the monitoring run, once per run)."""
    queue_metadata.create_all(engine)


def publish(connection: sa.Connection, clusters: Sequence[QueuedCluster]) -> int:
    """Open `clusters` in the queue; older open clusters are superseded (their messages are
    the newer run's to cluster again). Returns how many were published."""
    connection.execute(
        sa.update(clusters_table)
        .where(clusters_table.c.status == ClusterStatus.OPEN.value)
        .values(status=ClusterStatus.SUPERSEDED.value)
    )
    for cluster in clusters:
        connection.execute(
            sa.insert(clusters_table).values(
                cluster_id=cluster.cluster_id,
                run_id=cluster.run_id,
                created_at=cluster.created_at,
                model_version=cluster.model_version,
                known_intents=json.dumps(list(cluster.known_intents)),
                size=cluster.size,
                previous_size=cluster.previous_size,
                trend=cluster.trend,
                top_terms=json.dumps(list(cluster.top_terms)),
                status=ClusterStatus.OPEN.value,
            )
        )
        rows = [
            {"cluster_id": cluster.cluster_id, "position": position, **vars(member)}
            for position, member in enumerate(cluster.members)
        ]
        if rows:
            connection.execute(sa.insert(members_table), rows)
    return len(clusters)


def open_clusters(connection: sa.Connection, limit: int = 50) -> list[QueuedCluster]:
    """The open clusters, largest first, with their members (none where the tables are not
    there yet: no monitoring run has published any)."""
    if not sa.inspect(connection).has_table(clusters_table.name):
        return []
    rows = connection.execute(
        sa.select(clusters_table)
        .where(clusters_table.c.status == ClusterStatus.OPEN.value)
        .order_by(clusters_table.c.size.desc(), clusters_table.c.cluster_id)
        .limit(limit)
    ).mappings()
    return [_cluster(connection, row) for row in rows]


def _cluster(connection: sa.Connection, row: sa.RowMapping) -> QueuedCluster:
    members = connection.execute(
        sa.select(members_table)
        .where(members_table.c.cluster_id == row["cluster_id"])
        .order_by(members_table.c.position)
    ).mappings()
    return QueuedCluster(
        cluster_id=row["cluster_id"],
        run_id=row["run_id"],
        created_at=row["created_at"],
        model_version=row["model_version"],
        known_intents=tuple(json.loads(row["known_intents"])),
        size=row["size"],
        previous_size=row["previous_size"],
        trend=row["trend"],
        top_terms=tuple(json.loads(row["top_terms"])),
        members=tuple(
            QueuedMember(m["message_id"], m["text"], m["ts"], m["channel"], m["predicted_intent"])
            for m in members
        ),
        status=ClusterStatus(row["status"]),
    )


def label_cluster(connection: sa.Connection, label: ClusterLabel) -> int:
    """Label every member of an open cluster (but the excluded) and close it; returns how many
    labels were written. QueueError: unknown cluster (404), already closed (409), an intent
    that is not the model's unless marked new, a new one that is (400)."""
    if not sa.inspect(connection).has_table(clusters_table.name):
        raise QueueError(404, f"cluster {label.cluster_id} does not exist")
    row = (
        connection.execute(
            sa.select(clusters_table).where(clusters_table.c.cluster_id == label.cluster_id)
        )
        .mappings()
        .first()
    )
    if row is None:
        raise QueueError(404, f"cluster {label.cluster_id} does not exist")
    cluster = _cluster(connection, row)
    _check_intent(label, cluster)
    members = [m for m in cluster.members if m.message_id not in label.excluded]
    unknown = label.excluded - {m.message_id for m in cluster.members}
    if unknown:
        raise QueueError(400, f"not members of {label.cluster_id}: {sorted(unknown)[:5]}")
    if not members:
        raise QueueError(400, "every member is excluded: nothing to label")
    # The status check and the update are one statement: of two agents naming the same cluster
    # at once, one wins and the other is told, so no message gets two cluster labels.
    closed = connection.execute(
        sa.update(clusters_table)
        .where(
            clusters_table.c.cluster_id == label.cluster_id,
            clusters_table.c.status == ClusterStatus.OPEN.value,
        )
        .values(
            status=ClusterStatus.LABELLED.value,
            intent=label.intent,
            is_new_intent=label.is_new_intent,
            labelled_by=label.agent_id,
            labelled_at=label.at,
        )
    )
    if closed.rowcount != 1:
        raise QueueError(409, f"cluster {label.cluster_id} is {cluster.status.value}, not open")
    return insert_labels(connection, [_label_row(member, label) for member in members])


def _check_intent(label: ClusterLabel, cluster: QueuedCluster) -> None:
    known = set(cluster.known_intents)
    if label.is_new_intent:
        if label.intent in known:
            raise QueueError(400, f"{label.intent!r} is already an intent: label it as known")
        if not NEW_INTENT_NAME.match(label.intent):
            raise QueueError(
                400,
                "a new intent's name is lower-case letters, digits and _ (at most 64, "
                f"starting with a letter), like card_arrival; got {label.intent[:80]!r}",
            )
    elif label.intent not in known:
        raise QueueError(
            400,
            f"{label.intent[:80]!r} is not one of model version {cluster.model_version}'s "
            "intents: choose a known one, or mark it as a new intent",
        )


def _label_row(member: QueuedMember, label: ClusterLabel) -> LabelRecord:
    return LabelRecord(
        text=member.text,
        intent=label.intent,
        label_source=LabelSource.AGENT,
        trust=LabelTrust.AGENT,
        ts=label.at,
        message_id=member.message_id,
        predicted_intent=member.predicted_intent,
        is_new_intent=label.is_new_intent,
        user_id=label.agent_id,
        labelled_by=label.agent_id,
    )

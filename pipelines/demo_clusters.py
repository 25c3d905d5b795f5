"""The drift demo's "new intents, found" step: the clusters the monitoring run queued, named as
an agent would name them in the console (conversations/intent_queue.py, the console's path)."""

from __future__ import annotations

from collections import Counter
from datetime import datetime

import pandas as pd

from conversations import intent_queue, tables
from conversations.intent_queue import ClusterLabel, QueuedCluster


def queued_clusters(store_url: str) -> list[QueuedCluster]:
    """The open "label these" queue, largest cluster first."""
    engine = tables.create_engine(store_url)
    with engine.connect() as connection:
        clusters = intent_queue.open_clusters(connection)
    engine.dispose()
    return clusters


def describe(clusters: list[QueuedCluster], truth: dict[str, str]) -> list[str]:
    """One line per cluster: size, trend, top terms and how much of it one true intent is."""
    lines = []
    for cluster in clusters:
        intent, count = _majority(cluster, truth)
        lines.append(
            f"{cluster.size} messages ({cluster.trend}): {', '.join(cluster.top_terms[:4])} "
            f"— {count / cluster.size:.0%} {intent}"
        )
    return lines


def name_clusters(
    store_url: str, clusters: list[QueuedCluster], truth: dict[str, str], at: datetime
) -> set[str]:
    """Name each cluster by its true majority intent, unticking members of other intents, as
    an agent reading its samples would; returns the message ids labelled."""
    engine = tables.create_engine(store_url)
    labelled: set[str] = set()
    for cluster in clusters:
        intent, _ = _majority(cluster, truth)
        stray = {m.message_id for m in cluster.members if truth.get(m.message_id) != intent}
        label = ClusterLabel(
            cluster_id=cluster.cluster_id,
            intent=intent,
            is_new_intent=intent not in cluster.known_intents,
            agent_id="demo-agent",
            at=at,
            excluded=frozenset(stray),
        )
        with engine.begin() as connection:
            intent_queue.label_cluster(connection, label)
        labelled |= {m.message_id for m in cluster.members} - stray
    engine.dispose()
    return labelled


def _majority(cluster: QueuedCluster, truth: dict[str, str]) -> tuple[str, int]:
    counts = Counter(truth.get(member.message_id, "?") for member in cluster.members)
    return counts.most_common(1)[0]


def unlabelled(rows: pd.DataFrame, labelled: set[str]) -> pd.DataFrame:
    """The rows whose message no cluster label covered."""
    return rows[~rows["message_id"].isin(labelled)]

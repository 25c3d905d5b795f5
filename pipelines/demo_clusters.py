"""The drift demo's agents: the clusters the monitoring run queued, named as an agent would name
them in the console (conversations/intent_queue.py, the console's path), labels given one by
one, and a careless batch of wrong labels."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime
from pathlib import Path

import pandas as pd

from conversations import intent_queue, store_engine
from conversations.intent_queue import ClusterLabel, QueuedCluster
from conversations.schema import LabelSource, LabelTrust
from conversations.writer import LabelRecord, insert_labels
from models.splits import text_bucket


def queued_clusters(store_url: str) -> list[QueuedCluster]:
    """The open "label these" queue, largest cluster first."""
    engine = store_engine.create_engine(store_url)
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
    engine = store_engine.create_engine(store_url)
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


def label_messages(store_url: str, rows: pd.DataFrame, intents: list[str], at: datetime) -> int:
    """Agent labels for messages (label_source `agent`), as the agent console writes them."""
    engine = store_engine.create_engine(store_url)
    with engine.begin() as connection:
        insert_labels(
            connection,
            [
                LabelRecord(
                    message_id=row["message_id"],
                    text=row["text"],
                    intent=intent,
                    label_source=LabelSource.AGENT,
                    predicted_intent=row.get("predicted"),
                    user_id="demo-agent",
                    ts=at,
                    trust=LabelTrust.AGENT,
                    labelled_by="demo-agent",
                )
                for row, intent in zip(rows.to_dict("records"), intents, strict=True)
            ],
        )
    engine.dispose()
    return len(rows)


def damage_labels(store_url: str, banking77: Path, at: datetime) -> int:
    """A careless batch: half the training-split texts relabelled to a wrong intent."""
    frame = pd.read_csv(banking77 / "train.csv")
    train_rows = frame[[text_bucket(t) >= 0.2 for t in frame["text"]]]  # never the test split
    damaged = train_rows.sample(frac=0.5, random_state=3)
    intents = sorted(frame["category"].unique())
    rng = random.Random(4)
    wrong = [rng.choice([i for i in intents if i != right]) for right in damaged["category"]]
    rows = damaged.assign(message_id=None)
    return label_messages(store_url, rows, wrong, at)

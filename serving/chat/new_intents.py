"""The agents' "label these" queue over the chat protocol (frames `new_intents`, `label_cluster`).

A monitoring run publishes candidate new intents, clusters of fallback messages, into the store
(conversations/intent_queue.py). An agent lists the open ones and names one: a known intent of
the model, or a new one marked as such. Every member message (but those the agent leaves out)
gets an agent label, the same kind `label_message` writes, so the next training run learns it;
the other agents hear `cluster_labelled` and drop it from their queue.
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa

from conversations import intent_queue
from conversations.intent_queue import ClusterLabel, QueuedCluster, QueueError
from serving.chat import protocol as p
from serving.chat.context import ChatContext, Client
from serving.chat.event_log import AGENTS_AUDIENCE
from serving.chat.protocol import FrameError
from serving.chat.rooms import writes

# Messages shown per cluster: enough to judge it and leave out the ones that do not belong.
SAMPLES = 20


class IntentQueue:
    """Blocking queue calls on the chat store's engine (run through `ChatContext.db`)."""

    def __init__(self, engine: sa.Engine) -> None:
        self.engine = engine

    def open(self, limit: int) -> list[QueuedCluster]:
        """The open clusters, largest first."""
        with self.engine.connect() as connection:
            return intent_queue.open_clusters(connection, limit)

    @writes
    def label(self, label: ClusterLabel) -> int:
        """Label a cluster's members and close it, in one transaction; labels written."""
        with self.engine.begin() as connection:
            return intent_queue.label_cluster(connection, label)


async def list_new_intents(ctx: ChatContext, client: Client, data: p.NewIntentsQuery) -> None:
    """Send the open clusters and the intents an agent may choose from."""
    clusters = await ctx.db(IntentQueue(ctx.store.engine).open, data.limit)
    known = sorted({intent for cluster in clusters for intent in cluster.known_intents})
    document = {"clusters": [c.to_wire(SAMPLES) for c in clusters], "known_intents": known}
    client.send(p.encode("new_intents", document))


async def label_cluster(ctx: ChatContext, client: Client, data: p.LabelCluster) -> None:
    """Name a cluster; 400 (intent refused), 404 (no such cluster), 409 (already closed)."""
    agent_id = client.identity.user_id
    label = ClusterLabel(
        cluster_id=data.cluster_id,
        intent=data.intent,
        is_new_intent=data.new_intent,
        agent_id=agent_id,
        at=datetime.now(UTC),
        excluded=frozenset(data.exclude_message_ids),
    )
    try:
        written = await ctx.db(IntentQueue(ctx.store.engine).label, label)
    except QueueError as refused:
        raise FrameError(refused.code, refused.message) from refused
    await ctx.events.emit(
        AGENTS_AUDIENCE,
        "cluster_labelled",
        {
            "cluster_id": data.cluster_id,
            "intent": data.intent,
            "new_intent": data.new_intent,
            "labels": written,
            "by": agent_id,
        },
        roles=("agent",),
    )

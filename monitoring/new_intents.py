"""New intents, found: recent fallback messages clustered into candidate intents (pure, no I/O).

The messages the bot could not answer are grouped by meaning (sentence vectors from the encoder
training uses, `features/embeddings.py`, clustered by scikit-learn's HDBSCAN, which leaves
messages that fit no group as noise instead of forcing them into one). Each cluster gets its
size, its trend against the previous window of the same length, its top terms (class-based
TF-IDF: terms frequent in this cluster and rare in the others) and the sample messages nearest
its centre. A message whose text was not recorded (SERVING_RECORD_TEXT=hash/off) cannot be
clustered: it is counted, never guessed at.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum

import numpy as np
from sklearn.cluster import HDBSCAN
from sklearn.feature_extraction.text import CountVectorizer

from conversations.schema import normalise_text

logger = logging.getLogger(__name__)
# Texts → L2-normalised vectors, one row per text (features.embeddings.SentenceEncoder.encode).
Encoder = Callable[[list[str]], np.ndarray]


class Trend(StrEnum):
    """How a cluster's size compares with the previous window's messages like it."""

    NEW = "new"  # nothing like it in the previous window
    RISING = "rising"
    STEADY = "steady"
    FALLING = "falling"


@dataclass(frozen=True)
class FallbackMessage:
    """A customer message the bot fell back on; `text` None where only a hash was kept."""

    message_id: str
    ts: datetime
    text: str | None
    channel: str
    predicted_intent: str


@dataclass(frozen=True)
class ClusterConfig:
    """How clusters are found and shown (MONITORING_NEW_INTENT_* settings)."""

    min_cluster_size: int = 5
    max_messages: int = 2000  # the newest ones are clustered when a window holds more
    samples: int = 5
    top_terms: int = 6
    max_clusters: int = 20  # the largest; the rest are counted
    rising_ratio: float = 1.5  # size ≥ 1.5 × previous is rising, ≤ 1/1.5 × is falling


@dataclass(frozen=True)
class IntentCluster:
    """A candidate new intent: its members nearest the centre first."""

    key: str  # c1, c2 … by size within a run
    size: int
    previous_size: int
    trend: Trend
    top_terms: tuple[str, ...]
    samples: tuple[str, ...]
    members: tuple[FallbackMessage, ...] = field(repr=False)

    def to_dict(self) -> dict[str, object]:
        """As new_intents.json holds it (member ids, not their texts)."""
        return {
            "key": self.key,
            "size": self.size,
            "previous_size": self.previous_size,
            "trend": self.trend.value,
            "top_terms": list(self.top_terms),
            "samples": list(self.samples),
            "message_ids": [member.message_id for member in self.members],
        }


@dataclass(frozen=True)
class NewIntentsFinding:
    """What the window's fallbacks hold: clusters, and what could not be clustered and why."""

    fallbacks: int
    without_text: int
    considered: int
    clusters: tuple[IntentCluster, ...]
    smaller_clusters: int = 0  # found but past max_clusters
    problem: str | None = None  # why nothing could be clustered (the run goes on without)

    @property
    def clustered(self) -> int:
        """Messages inside a cluster."""
        return sum(cluster.size for cluster in self.clusters)

    def notes(self) -> tuple[str, ...]:
        """What the numbers leave out, in words."""
        notes = [f"Not clustered: {self.problem}"] if self.problem else []
        if self.without_text:
            notes.append(
                f"{self.without_text} of {self.fallbacks} fallback messages have no recorded "
                "text (SERVING_RECORD_TEXT=hash or off) and cannot be clustered."
            )
        with_text = self.fallbacks - self.without_text
        if self.considered < with_text:
            notes.append(f"Only the newest {self.considered} of {with_text} were clustered.")
        if self.smaller_clusters:
            notes.append(f"{self.smaller_clusters} smaller clusters are not listed.")
        return tuple(notes)

    def to_dict(self) -> dict[str, object]:
        """new_intents.json."""
        return {
            "fallbacks": self.fallbacks,
            "without_text": self.without_text,
            "considered": self.considered,
            "clustered": self.clustered,
            "smaller_clusters": self.smaller_clusters,
            "problem": self.problem,
            "notes": list(self.notes()),
            "clusters": [cluster.to_dict() for cluster in self.clusters],
        }


def find_new_intents(
    current: Sequence[FallbackMessage],
    previous: Sequence[FallbackMessage],
    encode: Encoder,
    config: ClusterConfig | None = None,
) -> NewIntentsFinding:
    """Cluster the window's fallback messages; `previous` (the window before) gives the trend."""
    config = config or ClusterConfig()
    usable = _with_text(current)
    # Newest first when capping, then a fixed order so the same window gives the same clusters.
    kept = sorted(usable, key=lambda m: (m.ts, m.message_id))[-config.max_messages :]
    empty = NewIntentsFinding(len(current), len(current) - len(usable), len(kept), ())
    if len(kept) < max(config.min_cluster_size, 2):
        return empty
    vectors = _unit(encode([_text(m) for m in kept]))
    labels = HDBSCAN(min_cluster_size=config.min_cluster_size, copy=True).fit_predict(vectors)
    groups = [np.flatnonzero(labels == label) for label in sorted(set(labels) - {-1})]
    if not groups:
        return empty
    # Largest first; equal sizes by their earliest member, so ids are stable for a window.
    groups.sort(key=lambda rows: (-len(rows), kept[rows[0]].message_id))
    smaller, groups = len(groups[config.max_clusters :]), groups[: config.max_clusters]
    centres = _unit(np.stack([vectors[rows].mean(axis=0) for rows in groups]))
    earlier = _previous_counts(_with_text(previous), groups, vectors, centres, encode)
    terms = _top_terms([[_text(kept[row]) for row in rows] for rows in groups], config.top_terms)
    clusters = []
    for number, (rows, centre) in enumerate(zip(groups, centres, strict=True)):
        ordered = rows[np.argsort(-(vectors[rows] @ centre), kind="stable")]
        members = tuple(kept[row] for row in ordered)
        clusters.append(
            IntentCluster(
                key=f"c{number + 1}",
                size=len(rows),
                previous_size=earlier[number],
                trend=_trend(len(rows), earlier[number], config.rising_ratio),
                top_terms=terms[number],
                samples=_samples(members, config.samples),
                members=members,
            )
        )
    return NewIntentsFinding(
        empty.fallbacks, empty.without_text, len(kept), tuple(clusters), smaller
    )


def _with_text(messages: Sequence[FallbackMessage]) -> list[FallbackMessage]:
    return [m for m in messages if m.text is not None and m.text.strip()]


def _text(message: FallbackMessage) -> str:
    return message.text or ""


def _unit(vectors: np.ndarray) -> np.ndarray:
    """Rows scaled to length 1, so Euclidean distance orders pairs as cosine similarity does."""
    vectors = np.asarray(vectors, dtype=np.float64)
    return vectors / np.clip(np.linalg.norm(vectors, axis=1, keepdims=True), 1e-12, None)


def _previous_counts(
    previous: list[FallbackMessage],
    groups: list[np.ndarray],
    vectors: np.ndarray,
    centres: np.ndarray,
    encode: Encoder,
) -> list[int]:
    """Per cluster, the previous window's fallbacks that would have been in it.

    A message counts for the nearest centre when it is at least as close to it as the
    cluster's own farthest tenth of members: the cluster's reach, measured on itself.
    """
    if not previous:
        return [0] * len(groups)
    reach = np.array(
        [
            np.quantile(vectors[rows] @ centre, 0.1)
            for rows, centre in zip(groups, centres, strict=True)
        ]
    )
    similarity = _unit(encode([_text(m) for m in previous])) @ centres.T
    nearest = similarity.argmax(axis=1)
    inside = similarity[np.arange(len(previous)), nearest] >= reach[nearest]
    return [int(np.sum(inside & (nearest == number))) for number in range(len(groups))]


def _trend(size: int, previous: int, ratio: float) -> Trend:
    if previous == 0:
        return Trend.NEW
    if size >= previous * ratio:
        return Trend.RISING
    if size * ratio <= previous:
        return Trend.FALLING
    return Trend.STEADY


def _top_terms(documents: list[list[str]], count: int) -> list[tuple[str, ...]]:
    """Class-based TF-IDF: each cluster's texts as one document, terms weighed against the rest.

    Stop words are dropped here (unlike the model's TF-IDF, where "not" and "my" carry intent):
    these terms are read by people, and "the" tells them nothing.
    """
    joined = [" ".join(texts) for texts in documents]
    try:
        counter = CountVectorizer(stop_words="english", ngram_range=(1, 2))
        counts = counter.fit_transform(joined).toarray().astype(np.float64)
    except ValueError:  # every word a stop word: nothing to show
        return [() for _ in documents]
    names = counter.get_feature_names_out()
    frequency = counts / np.clip(counts.sum(axis=1, keepdims=True), 1, None)
    average_words = counts.sum() / len(documents)
    weights = frequency * np.log1p(average_words / np.clip(counts.sum(axis=0), 1, None))
    terms = []
    for row in weights:
        # Heaviest first, ties alphabetical: the same clusters always show the same terms.
        order = sorted(np.flatnonzero(row > 0), key=lambda column: (-row[column], names[column]))
        terms.append(tuple(str(names[column]) for column in order[:count]))
    return terms


def _samples(members: tuple[FallbackMessage, ...], count: int) -> tuple[str, ...]:
    """Distinct texts nearest the centre (a text sent ten times is one sample)."""
    chosen: dict[str, str] = {}
    for member in members:
        chosen.setdefault(normalise_text(_text(member)), _text(member))
        if len(chosen) == count:
            break
    return tuple(chosen.values())

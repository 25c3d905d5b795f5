"""Shadow scoring: a share of live traffic answered by the challenger too, off the response path.

A request only draws a random number per message and, for the sampled ones, appends a
`ShadowJob` to a bounded in-memory queue (no model call, no I/O); the served answer is recorded
with the job's `pair_id`. A background task scores the queue with the challenger in batches
(in a thread) and hands each answer to the prediction log as a `shadow` row with the same
`pair_id` (conversations/tables.py `predictions.role`, `.pair_id`). A full queue drops the
message and counts it (`intent_shadow_dropped_total`): the answer never waits for the
challenger. Nothing is shadowed while the registry has no challenger, or while the challenger
is the version already serving (between a promotion's two alias writes).

Shadow scoring is best effort: at a stop, messages still queued are dropped (and counted), and a
shadow answer the prediction log cannot queue is dropped by the log (counted there).
"""

from __future__ import annotations

import asyncio
import logging
import random
import time
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from conversations.schema import PredictionRole
from models.registry import IntentRegistry
from serving.drained_queue import DrainedQueue
from serving.prediction_log import PendingPrediction, PredictionLog
from serving.prometheus_metrics import LazyCounter, LazyGauge
from serving.settings import ServingSettings
from serving.shadow_model import ChallengerHolder

logger = logging.getLogger(__name__)

scored_total = LazyCounter(
    "intent_shadow_scored_total",
    "Live messages the challenger answered in the shadow of the served model.",
)
dropped_total = LazyCounter(
    "intent_shadow_dropped_total",
    "Sampled messages not shadowed: the queue was full, or scoring failed.",
)
shadow_queue_depth = LazyGauge(
    "intent_shadow_queue_depth", "Messages waiting for the challenger.", mode="livesum"
)


@dataclass(frozen=True, slots=True)
class ShadowJob:
    """A sampled message waiting for the challenger, with its served answer's pair id."""

    pair_id: str
    text: str
    context: Mapping[str, Any] | None
    ts: datetime
    user_id: str | None
    session_id: str | None


@dataclass(frozen=True)
class ShadowPolicy:
    """How much is shadowed (SERVING_SHADOW_SHARE, _QUEUE_SIZE) and how it is scored."""

    share: float
    queue_size: int
    batch_size: int
    top_k: int

    @classmethod
    def of(cls, settings: ServingSettings) -> ShadowPolicy:
        """The policy of the service's settings (batches as large as its micro-batches)."""
        return cls(
            settings.shadow_share,
            settings.shadow_queue_size,
            settings.max_micro_batch,
            settings.top_k,
        )


# Without a full batch, what is queued is scored this often.
SCORE_INTERVAL_S = 1.0


class ShadowScorer(DrainedQueue[ShadowJob]):
    """Samples live messages for the challenger and records its answers beside the served ones."""

    def __init__(
        self,
        challenger: ChallengerHolder,
        log: PredictionLog,
        policy: ShadowPolicy,
        rng: random.Random | None = None,
    ) -> None:
        super().__init__(policy.queue_size, policy.batch_size, SCORE_INTERVAL_S)
        self.challenger = challenger
        self.policy = policy
        self._log = log
        self._rng = rng or random.Random()
        self._reported: str | None = None

    def refresh(self) -> bool:
        """Follow the challenger alias; True when a new version was loaded.

        A load failure is logged once, never raised: the champion keeps serving.
        """
        try:
            changed = self.challenger.refresh()
            self._reported = None
        except Exception as exc:  # nothing is shadowed until the version loads
            problem = f"{type(exc).__name__}: {exc}"
            if problem != self._reported:
                logger.warning("shadow scoring paused: %s", problem)
            self._reported = problem
            return False
        return changed and self.challenger.current is not None

    def describe(self, serving_version: str) -> dict[str, Any] | None:
        """/version's `challenger`: the version shadowed and the share, None when none is."""
        model = self.challenger.current
        if model is None or model.version == serving_version:
            return None
        return {**model.describe(), "alias": self.challenger.alias, "share": self.policy.share}

    def offer(
        self,
        texts: Sequence[str],
        contexts: Sequence[Mapping[str, Any] | None],
        serving_version: str,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> list[str | None] | None:
        """Sample a request's messages for the challenger; each one's pair id (None: not sampled).

        Called on the response path: no model call and no I/O, only a queue append.
        """
        model = self.challenger.current
        if model is None or model.version == serving_version:
            return None
        pairs: list[str | None] = []
        ts = datetime.now(UTC)
        for text, context in zip(texts, contexts, strict=True):
            if self._rng.random() >= self.policy.share:
                pairs.append(None)
            else:
                job = ShadowJob(uuid.uuid4().hex, text, context, ts, user_id, session_id)
                if self.put(job):
                    pairs.append(job.pair_id)
                else:  # the queue is full
                    dropped_total.inc()
                    pairs.append(None)
        # Scored a full batch at a time (or every second): one vectorised call for many messages
        # costs the worker's CPU, which the answers share, far less than one call each.
        self.wake_if_batch_ready()
        return pairs

    async def on_close(self) -> None:
        """Drop and count what is still queued: shadow scoring is best effort."""
        if dropped := self.drop_all():
            dropped_total.inc(dropped)
        shadow_queue_depth.set(0)

    async def drain_once(self) -> bool:
        """Answer one batch from the head of the queue with the challenger and log the answers."""
        batch = self.take_batch()
        shadow_queue_depth.set(self.depth)
        model = self.challenger.current  # read once: the batch finishes on this version
        if model is None:  # the alias went away while these waited
            dropped_total.inc(len(batch))
            return True
        started = time.perf_counter()
        try:
            documents = await asyncio.to_thread(
                model.inference.predict_documents,
                [job.text for job in batch],
                [job.context for job in batch],
                self.policy.top_k,
            )
        except Exception:  # a challenger that cannot answer must not stop the worker
            logger.exception("shadow scoring: version %s failed a batch", model.version)
            dropped_total.inc(len(batch))
            return True  # dropped and counted: the next batch goes on
        latency_ms = round((time.perf_counter() - started) * 1000, 3)
        for job, document in zip(batch, documents, strict=True):
            sentiment = document["sentiment"]
            self._log.offer(
                PendingPrediction(
                    job.text,
                    document["intent"],
                    document["confidence"],
                    document["fallback"],
                    model.ref.to_document(),
                    sentiment.get("polarity"),
                    sentiment.get("subjectivity"),
                    latency_ms,
                    job.ts,
                    job.user_id,
                    job.session_id,
                    PredictionRole.SHADOW,
                    job.pair_id,
                )
            )
        scored_total.inc(len(batch))
        return True


def shadow_scorer(
    registry: IntentRegistry, log: PredictionLog | None, settings: ServingSettings
) -> ShadowScorer | None:
    """The service's shadow scorer, its challenger loaded if there is one; None when off.

    Off when SERVING_SHADOW_SHARE is 0, or when predictions are not recorded
    (SERVING_RECORD_PREDICTIONS=false): a shadow answer nobody records compares nothing.
    """
    if settings.shadow_share <= 0:
        return None
    if log is None:
        logger.info("shadow scoring off: SERVING_RECORD_PREDICTIONS is false")
        return None
    scorer = ShadowScorer(
        ChallengerHolder(registry, settings.shadow_alias), log, ShadowPolicy.of(settings)
    )
    scorer.refresh()  # at start, before the worker serves: a challenger that fails is logged
    return scorer

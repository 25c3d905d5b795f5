"""What a worker of the intent service holds while it serves, from start-up to shutdown.

serving/service.py declares the HTTP and WebSocket endpoints; this module builds what they
use (the served model and its registry poll, the feedback store and its credentials, the
micro-batcher, the prediction log, the shadow scorer, the chat hub), starts it with the
worker and closes it in order at shutdown.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from features.sentiment import warm_up as warm_up_sentiment
from models.predictions import ModelDocument, PredictionDocument
from models.registry import IntentRegistry, RegistryConfig
from serving.auth import FeedbackAuthenticator
from serving.batcher import MicroBatcher
from serving.chat.hub import ChatHub
from serving.chat.intent_client import RemoteIntentClient
from serving.chat.settings import ChatSettings
from serving.counters import count_answers, count_swap
from serving.feedback import FeedbackStore
from serving.model_holder import ModelHolder, ServedModel
from serving.prediction_log import LogPolicy, PredictionLog
from serving.predictions import ServedPrediction, predict_grouped
from serving.settings import ServingSettings
from serving.shadow import ShadowScorer, shadow_scorer

logger = logging.getLogger("serving")

PredictRequest = tuple[ServedModel, str, Mapping[str, Any] | None]


@dataclass(eq=False)
class ServiceResources:
    """The model, stores, queues and background tasks one worker serves with."""

    settings: ServingSettings
    models: ModelHolder
    feedback_store: FeedbackStore
    feedback_auth: FeedbackAuthenticator
    batcher: MicroBatcher[PredictRequest, ServedPrediction]
    prediction_log: PredictionLog | None  # every HTTP answer, in the store
    shadow: ShadowScorer | None  # the challenger answers a share of traffic (serving/shadow.py)
    remote_intents: RemoteIntentClient | None = None
    chat: ChatHub | None = None
    _poller: asyncio.Task[None] | None = field(default=None, init=False)

    async def start(self) -> None:
        """Start the background work: the registry poll, the log, the shadow, the chat hub."""
        if self.settings.poll_interval_s > 0:
            # No busy loop: it sleeps between checks.
            self._poller = asyncio.create_task(self._poll_registry())
        if self.prediction_log is not None:
            self.prediction_log.start()
        if self.shadow is not None:
            self.shadow.start()
        if self.chat is not None:
            await self.chat.start()

    async def close(self) -> None:
        """Stop polling, close the chat tier, flush the queues and close the store."""
        if self._poller is not None:
            self._poller.cancel()
        if self.chat is not None:
            await self.chat.close()
        if self.remote_intents is not None:
            await self.remote_intents.close()
        if self.shadow is not None:
            await self.shadow.close()  # before the log: its last answers are written too
        if self.prediction_log is not None:
            await self.prediction_log.close()  # writes what is still queued
        self.feedback_store.close()

    async def refresh_model(self) -> bool:
        """Serve the alias's version if it moved; True when it swapped.

        Raises what loading the new version raised; the current version keeps serving.
        """
        swapped = await asyncio.to_thread(self.models.refresh)
        if swapped:
            count_swap()
            gc.freeze()  # the new model joins the permanent generation too
        return swapped

    async def refresh_challenger(self) -> None:
        """Follow the challenger alias (the scorer logs its own problems)."""
        if self.shadow is not None and await asyncio.to_thread(self.shadow.refresh):
            gc.freeze()  # its model joins the permanent generation too

    async def classify(self, text: str, context: dict[str, Any] | None) -> ServedPrediction:
        """One message through the shared micro-batcher, on the version serving now."""
        document = await self.batcher.submit((self.models.current, text, context))
        count_answers([document])
        return document

    def served_intents(self) -> list[str]:
        """The intents the model serving now can predict (the agents' true-intent choices)."""
        return [str(intent) for intent in self.models.current.inference.classes]

    def record(
        self,
        texts: Sequence[str],
        contexts: Sequence[Mapping[str, Any] | None],
        documents: Sequence[PredictionDocument],
        served_by: ModelDocument,
        processing_ms: float,
        user_id: str | None = None,
        session_id: str | None = None,
    ) -> None:
        """Queue a request's answers in the prediction log, a share offered to the challenger.

        Nothing happens when predictions are not recorded (SERVING_RECORD_PREDICTIONS=false).
        """
        if self.prediction_log is None:
            return
        pairs = (
            self.shadow.offer(texts, contexts, served_by["version"], user_id, session_id)
            if self.shadow
            else None
        )
        self.prediction_log.record(
            texts, documents, served_by, processing_ms, user_id, session_id, pairs
        )

    async def _poll_registry(self) -> None:
        reported: str | None = None
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            try:
                await self.refresh_model()
                reported = None
            except Exception as exc:  # the current version keeps serving (model_holder.py)
                problem = f"{type(exc).__name__}: {exc}"
                if problem != reported:  # one line per problem, not a traceback every tick
                    logger.warning("registry poll: %s", problem)
                reported = problem
            await self.refresh_challenger()  # the champion is unaffected by its problems


def open_resources(settings: ServingSettings, chat_settings: ChatSettings) -> ServiceResources:
    """Load the champion and open everything a worker serves with (not started yet).

    Fails with a clear message when the registry has no champion.
    """
    registry = IntentRegistry(
        RegistryConfig(
            settings.mlflow_tracking_uri, settings.mlflow_registry_uri, settings.model_name
        )
    )
    models = ModelHolder(registry, settings.model_alias)
    models.refresh()
    feedback_store = FeedbackStore(settings.store_url)
    feedback_auth = FeedbackAuthenticator(
        settings.feedback_api_keys,
        settings.admin_api_key,
        chat_settings.require_secret() if chat_settings.jwt_secret else None,
        chat_settings.token_max_lifetime_s,
    )
    batcher = MicroBatcher(
        functools.partial(predict_grouped, top_k=settings.top_k), settings.max_micro_batch
    )
    prediction_log = (
        PredictionLog(settings.store_url, LogPolicy.of(settings))
        if settings.record_predictions
        else None
    )
    resources = ServiceResources(
        settings,
        models,
        feedback_store,
        feedback_auth,
        batcher,
        prediction_log,
        shadow_scorer(registry, prediction_log, settings),
    )
    if chat_settings.enabled:
        _open_chat(resources, chat_settings)
    # Every answer carries TextBlob sentiment, which `features` imports lazily: load it now
    # so the first request does not pay for it and its objects are frozen below too.
    warm_up_sentiment()
    # Everything loaded so far (libraries, the model) lives for the whole process: moving it
    # out of the collector's reach removes full-collection pauses from the latency tail.
    gc.freeze()
    return resources


def _open_chat(resources: ServiceResources, chat_settings: ChatSettings) -> None:
    """The chat hub, classifying through the model served here or a remote intent service."""
    if chat_settings.intent_url:
        resources.remote_intents = RemoteIntentClient(
            chat_settings.intent_url, chat_settings.classify_timeout_s
        )
    # Agents label with the served model's intents (a remote model: the catalogue's).
    remote = resources.remote_intents
    known = None if remote else resources.served_intents
    resources.chat = ChatHub(chat_settings, remote or resources.classify, known)

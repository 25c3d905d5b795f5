"""The BentoML service: predict, batch predict, feedback, version, admin reload, metrics.

Start with `make serve` (or `bentoml serve serving.service:IntentService`). The model comes from
the MLflow registry by alias (default `champion`) and is hot-swapped when the alias moves.
"""

from __future__ import annotations

import asyncio
import functools
import gc
import hmac
import logging
import time
from collections.abc import Sequence
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI, Header, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from features.sentiment import warm_up as warm_up_sentiment
from models.predictions import PredictionDocument
from models.registry import IntentRegistry, RegistryConfig
from serving.auth import CredentialError, FeedbackAuthenticator
from serving.batcher import MicroBatcher
from serving.chat.app import DevTokenRequest, build_chat_app, widget_sessions_of
from serving.chat.auth import issue_token
from serving.chat.hub import ChatHub
from serving.chat.intent_client import RemoteIntentClient
from serving.chat.protocol import CloseCode
from serving.chat.settings import ChatSettings
from serving.feedback import FeedbackStore
from serving.inputs import NO_NUL, NOT_BLANK, Context, Identifier, IntentName, text_bounds
from serving.metrics_dir import use_own_metrics_dir
from serving.model_holder import ModelHolder
from serving.prediction_log import LogPolicy, PredictionLog
from serving.predictions import ServedPrediction, predict_grouped
from serving.request_logs import quiet_client_errors
from serving.responses import error, json_response
from serving.settings import ServingSettings
from serving.shadow import shadow_scorer
from serving.startup import check_before_binding, load_or_refuse
from serving.wiring import assemble, service_options

logger = logging.getLogger("serving")
# Read once from the environment. In the `bentoml serve` process, before anything binds, a bad
# value, dev login off loopback or no champion to serve ends the command with one line.
settings = load_or_refuse(ServingSettings)
chat_settings = load_or_refuse(ChatSettings)
check_before_binding(settings, chat_settings.enabled and chat_settings.dev_login)

predictions_total = bentoml.metrics.Counter(
    name="intent_predictions_total",
    documentation="Predictions answered, by predicted intent (nlu_fallback included).",
    labelnames=["intent"],
)
fallbacks_total = bentoml.metrics.Counter(
    name="intent_fallbacks_total", documentation="Predictions that fell back to nlu_fallback."
)
swaps_total = bentoml.metrics.Counter(
    name="intent_model_swaps_total", documentation="Hot swaps to a new model version."
)
# `bentoml serve` reads this before it starts the workers: this server's counters get a directory
# of their own instead of the host-wide one the next server start would empty.
use_own_metrics_dir()
quiet_client_errors()  # a client's 400 is an INFO line, not an ERROR with a traceback
# Request types: static aliases for the type checker, bounds from the settings for pydantic.
Text = Annotated[str, text_bounds(settings.max_text_chars), NO_NUL, NOT_BLANK]


class PredictItem(BaseModel):
    """One message to classify."""

    # Unknown fields are ignored everywhere, as BentoML does for top-level parameters.
    model_config = ConfigDict(extra="ignore")

    text: Text
    context: Context | None = None


Items = Annotated[list[PredictItem], Field(min_length=1, max_length=settings.max_batch_items)]


# BentoML serves the Swagger UI at / and merges these routes into /docs.json; no second UI.
admin_app = FastAPI(
    title="intent service administration", docs_url=None, redoc_url=None, openapi_url=None
)
chat_app = build_chat_app(
    dev_login=chat_settings.enabled and chat_settings.dev_login,
    widget_origins=chat_settings.widget_origins,
    widget_sessions=widget_sessions_of(chat_settings),
)


@bentoml.service(name="intent_service", **service_options(settings))
@bentoml.asgi_app(admin_app, path="/")
@bentoml.asgi_app(chat_app, path="/chat")
class IntentService:
    """Serves the registry's `champion` intent model over HTTP.

    The APIs answer a JSON object: a prebuilt Response (orjson, serving/responses.py) or a dict.
    BentoML derives no schema from that return type, so each declares `output_spec=dict`.
    """

    def __init__(self) -> None:
        self.settings = settings
        registry = IntentRegistry(
            RegistryConfig(
                settings.mlflow_tracking_uri, settings.mlflow_registry_uri, settings.model_name
            )
        )
        self.models = ModelHolder(registry, settings.model_alias)
        self.models.refresh()  # fails start-up with a clear message when there is no champion
        self.feedback_store = FeedbackStore(settings.store_url)
        self.feedback_auth = FeedbackAuthenticator(
            settings.feedback_api_keys,
            settings.admin_api_key,
            chat_settings.require_secret() if chat_settings.jwt_secret else None,
        )
        self.batcher = MicroBatcher(
            functools.partial(predict_grouped, top_k=settings.top_k), settings.max_micro_batch
        )
        self._poller: asyncio.Task[None] | None = None
        self.prediction_log: PredictionLog | None = None  # every HTTP answer, in the store
        if settings.record_predictions:
            self.prediction_log = PredictionLog(settings.store_url, LogPolicy.of(settings))
        # The registry's challenger answers a share of live traffic beside it (serving/shadow.py).
        self.shadow = shadow_scorer(registry, self.prediction_log, settings)
        self.remote_intents: RemoteIntentClient | None = None
        self.chat: ChatHub | None = None
        if chat_settings.enabled:
            if chat_settings.intent_url:
                self.remote_intents = RemoteIntentClient(
                    chat_settings.intent_url, chat_settings.classify_timeout_s
                )
            # Agents label with the served model's intents (a remote model: the catalogue's).
            known = None if self.remote_intents else self.served_intents
            self.chat = ChatHub(chat_settings, self.remote_intents or self.classify_for_chat, known)
        # Every answer carries TextBlob sentiment, which `features` imports lazily: load it now
        # so the first request does not pay for it and its objects are frozen below too.
        warm_up_sentiment()
        # Everything loaded so far (libraries, the model) lives for the whole process: moving it
        # out of the collector's reach removes full-collection pauses from the latency tail.
        gc.freeze()

    @bentoml.on_startup
    async def start_polling(self) -> None:
        """Poll the registry alias in the background (no busy loop: it sleeps between checks)."""
        if self.settings.poll_interval_s > 0:
            self._poller = asyncio.create_task(self._poll_registry())
        if self.prediction_log is not None:
            self.prediction_log.start()
        if self.shadow is not None:
            self.shadow.start()
        if self.chat is not None:
            await self.chat.start()

    @bentoml.on_shutdown
    async def stop(self) -> None:
        """Stop polling and close the store."""
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

    async def _poll_registry(self) -> None:
        reported: str | None = None
        while True:
            await asyncio.sleep(self.settings.poll_interval_s)
            try:
                if await asyncio.to_thread(self.models.refresh):
                    self._after_swap()
                reported = None
            except Exception as exc:  # the current version keeps serving (model_holder.py)
                problem = f"{type(exc).__name__}: {exc}"
                if problem != reported:  # one line per problem, not a traceback every tick
                    logger.warning("registry poll: %s", problem)
                reported = problem
            # The challenger: logs its own problems, the champion is unaffected.
            if self.shadow is not None and await asyncio.to_thread(self.shadow.refresh):
                gc.freeze()  # its model joins the permanent generation too

    @bentoml.api(route="/predict", output_spec=dict)
    async def predict(
        self,
        text: Text,
        context: Context | None = None,
        user_id: Identifier | None = None,
        session_id: Identifier | None = None,
    ) -> Response:
        """Classify one customer message."""
        started = time.perf_counter()
        model = self.models.current  # read once: this request finishes on this version
        document = await self.batcher.submit((model, text, context))
        self._count([document])
        document["processing_ms"] = round((time.perf_counter() - started) * 1000, 3)
        if self.prediction_log is not None:
            served = document["model"]["version"]
            pairs = (
                self.shadow.offer([text], [context], served, user_id, session_id)
                if self.shadow
                else None
            )
            self.prediction_log.record(
                [text],
                [document],
                document["model"],
                document["processing_ms"],
                user_id,
                session_id,
                pairs,
            )
        return json_response(document)

    @bentoml.api(route="/batch_predict", output_spec=dict)
    async def batch_predict(self, items: Items) -> Response:
        """Classify up to `max_batch_items` messages in one call."""
        started = time.perf_counter()
        model = self.models.current
        documents = await asyncio.to_thread(
            model.inference.predict_documents,
            [item.text for item in items],
            [item.context for item in items],
            self.settings.top_k,
        )
        self._count(documents)
        processing_ms = round((time.perf_counter() - started) * 1000, 3)
        served_by = model.ref.to_document()
        if self.prediction_log is not None:
            texts = [item.text for item in items]
            contexts = [item.context for item in items]
            pairs = self.shadow.offer(texts, contexts, model.version) if self.shadow else None
            self.prediction_log.record(texts, documents, served_by, processing_ms, pair_ids=pairs)
        return json_response(
            {
                "predictions": documents,
                "model": served_by,
                "processing_ms": processing_ms,
            }
        )

    @bentoml.api(route="/feedback", output_spec=dict)
    async def feedback(
        self,
        ctx: bentoml.Context,
        text: Text,
        true_intent: IntentName,
        predicted_intent: IntentName | None = None,
        message_id: Identifier | None = None,
        user_id: Identifier | None = None,
        session_id: Identifier | None = None,
    ) -> dict[str, Any] | Response:
        """Store a corrected label with the trust its credential gives; new intents are flagged."""
        headers = ctx.request.headers
        try:
            labeller = self.feedback_auth.authenticate(
                headers.get("x-api-key"), headers.get("authorization")
            )
        except CredentialError as refused:
            ctx.response.status_code = refused.status  # BentoML answers with the ctx's status
            return refused.response()
        known = set(self.models.current.inference.classes.tolist())
        is_new = true_intent not in known
        feedback_id = await asyncio.to_thread(
            self.feedback_store.record,
            text,
            true_intent,
            predicted_intent,
            is_new,
            message_id,
            user_id,
            session_id,
            trust=labeller.trust,
            labelled_by=labeller.labelled_by,
        )
        return {"feedback_id": feedback_id, "stored": True, "new_intent": is_new}

    @admin_app.get("/version")
    def version(self) -> dict[str, Any]:
        """The model version answering now, its run, training time, metrics and fallback.

        `challenger`: the version shadowed (serving/shadow.py), None when none is.
        """
        current = self.models.current
        shadowed = self.shadow.describe(current.version) if self.shadow else None
        return {**current.describe(), "challenger": shadowed}

    @admin_app.post("/admin/reload")
    async def reload(self, x_api_key: str | None = Header(default=None)) -> JSONResponse:
        """Load the alias's current version now (API key in the X-API-Key header)."""
        expected = self.settings.admin_api_key
        if expected is None or not hmac.compare_digest(
            (x_api_key or "").encode(), expected.get_secret_value().encode()
        ):
            return error(401, "a valid X-API-Key header is required")
        try:
            swapped = await asyncio.to_thread(self.models.refresh)
        except Exception as exc:  # the old version keeps serving; say why
            logger.exception("reload failed")
            return error(503, f"reload failed: {exc}")
        if swapped:
            self._after_swap()
        if self.shadow is not None and await asyncio.to_thread(self.shadow.refresh):
            gc.freeze()
        current = self.models.current
        return JSONResponse({"swapped": swapped, "version": current.version})

    async def classify_for_chat(
        self, text: str, context: dict[str, Any] | None
    ) -> ServedPrediction:
        """The chat tier's in-process path to the model (shares the micro-batcher)."""
        document = await self.batcher.submit((self.models.current, text, context))
        self._count([document])
        return document

    def served_intents(self) -> list[str]:
        """The intents the model serving now can predict (the agents' true-intent choices)."""
        return [str(intent) for intent in self.models.current.inference.classes]

    @chat_app.websocket("/ws")
    async def chat_socket(self, websocket: WebSocket) -> None:
        """The chat protocol (serving/README.md): ws://HOST:PORT/chat/ws?token=JWT."""
        if self.chat is None:
            await websocket.accept()
            await websocket.close(code=CloseCode.POLICY_VIOLATION, reason="chat is disabled")
            return
        await self.chat.serve(websocket)

    @chat_app.post("/dev/token")
    def dev_token(self, body: DevTokenRequest) -> JSONResponse:
        """A token for anyone who asks: local demos only (CHAT_DEV_LOGIN=true)."""
        if self.chat is None or not chat_settings.dev_login:
            return error(404, "dev login is off (CHAT_DEV_LOGIN=false)")
        token = issue_token(self.chat.secret, body.user_id, body.role, chat_settings.token_ttl_s)
        return JSONResponse({"token": token, "user_id": body.user_id, "role": body.role.value})

    def _after_swap(self) -> None:
        swaps_total.inc()
        gc.freeze()  # the new model joins the permanent generation too

    def _count(self, documents: Sequence[PredictionDocument]) -> None:
        for document in documents:
            predictions_total.labels(intent=document["intent"]).inc()
            if document["fallback"]:
                fallbacks_total.inc()


service = assemble(IntentService, settings)

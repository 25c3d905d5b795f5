"""The BentoML service: predict, batch predict, feedback, version, admin reload, metrics.

Start with `make serve` (or `bentoml serve serving.service:IntentService`). The model comes from
the MLflow registry by alias (default `champion`) and is hot-swapped when the alias moves.
This module declares the endpoints and the request types; what they serve with (the model, the
stores, the prediction log, the shadow, the chat hub) is serving/resources.py, what wraps them
serving/wiring.py.
"""

from __future__ import annotations

import asyncio
import hmac
import logging
import time
from typing import Annotated, Any

import bentoml
from fastapi import FastAPI, Header, Request, WebSocket
from pydantic import BaseModel, ConfigDict, Field
from starlette.responses import JSONResponse, Response

from serving.auth import CredentialError
from serving.chat.app import DevTokenRequest, build_chat_app, widget_sessions_of
from serving.chat.auth import issue_token
from serving.chat.exposure import addressed_to_loopback
from serving.chat.protocol import CloseCode
from serving.chat.settings import ChatSettings
from serving.counters import count_answers
from serving.inputs import NO_NUL, NOT_BLANK, Context, Identifier, IntentName, text_bounds
from serving.metrics_dir import use_own_metrics_dir
from serving.prometheus_metrics import create_declared
from serving.request_logs import escape_access_log, quiet_client_errors
from serving.resources import open_resources
from serving.responses import error, json_response
from serving.settings import ServingSettings
from serving.startup import check_before_binding, load_or_refuse
from serving.wiring import assemble, service_options

logger = logging.getLogger("serving")
# Read once from the environment. In the `bentoml serve` process, before anything binds, a bad
# value, dev login off loopback or no champion to serve ends the command with one line.
settings = load_or_refuse(ServingSettings)
chat_settings = load_or_refuse(ChatSettings)
check_before_binding(settings, chat_settings.enabled and chat_settings.dev_login)

# `bentoml serve` reads this before it starts the workers: this server's counters get a directory
# of their own instead of the host-wide one the next server start would empty.
use_own_metrics_dir()
quiet_client_errors()  # a client's 400 is an INFO line, not an ERROR with a traceback
escape_access_log()  # a path's %0A or %1B never starts a forged line or a terminal escape
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
        # In the worker, once BentoML set its metrics directory: /metrics shows every one, at 0.
        create_declared()
        # Fails start-up with a clear message when there is no champion.
        self.resources = open_resources(settings, chat_settings)

    @bentoml.on_startup
    async def start_background(self) -> None:
        """Start polling the registry, the prediction log, the shadow and the chat hub."""
        await self.resources.start()

    @bentoml.on_shutdown
    async def stop(self) -> None:
        """Stop polling, flush the queues and close the store."""
        await self.resources.close()

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
        resources = self.resources
        model = resources.models.current  # read once: this request finishes on this version
        document = await resources.batcher.submit((model, text, context))
        count_answers([document])
        document["processing_ms"] = round((time.perf_counter() - started) * 1000, 3)
        resources.record(
            [text],
            [context],
            [document],
            document["model"],
            document["processing_ms"],
            user_id,
            session_id,
        )
        return json_response(document)

    @bentoml.api(route="/batch_predict", output_spec=dict)
    async def batch_predict(self, items: Items) -> Response:
        """Classify up to `max_batch_items` messages in one call."""
        started = time.perf_counter()
        model = self.resources.models.current
        texts = [item.text for item in items]
        contexts = [item.context for item in items]
        documents = await asyncio.to_thread(
            model.inference.predict_documents, texts, contexts, settings.top_k
        )
        count_answers(documents)
        processing_ms = round((time.perf_counter() - started) * 1000, 3)
        served_by = model.ref.to_document()
        self.resources.record(texts, contexts, documents, served_by, processing_ms)
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
            labeller = self.resources.feedback_auth.authenticate(
                headers.get("x-api-key"), headers.get("authorization")
            )
        except CredentialError as refused:
            ctx.response.status_code = refused.status  # BentoML answers with the ctx's status
            return refused.response()
        is_new = true_intent not in self.resources.served_intents()
        feedback_id = await asyncio.to_thread(
            self.resources.feedback_store.record,
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
        current = self.resources.models.current
        shadow = self.resources.shadow
        shadowed = shadow.describe(current.version) if shadow else None
        return {**current.describe(), "challenger": shadowed}

    @admin_app.post("/admin/reload")
    async def reload(self, x_api_key: str | None = Header(default=None)) -> JSONResponse:
        """Load the alias's current version now (API key in the X-API-Key header)."""
        expected = settings.admin_api_key
        if expected is None or not hmac.compare_digest(
            (x_api_key or "").encode(), expected.get_secret_value().encode()
        ):
            return error(401, "a valid X-API-Key header is required")
        try:
            swapped = await self.resources.refresh_model()
        except Exception as exc:  # the old version keeps serving; say why
            logger.exception("reload failed")
            return error(503, f"reload failed: {exc}")
        await self.resources.refresh_challenger()
        current = self.resources.models.current
        return JSONResponse({"swapped": swapped, "version": current.version})

    @chat_app.websocket("/ws")
    async def chat_socket(self, websocket: WebSocket) -> None:
        """The chat protocol (serving/chat/README.md): token as subprotocol `bearer` or ?token=."""
        chat = self.resources.chat
        if chat is None:
            await websocket.accept()
            await websocket.close(code=CloseCode.POLICY_VIOLATION, reason="chat is disabled")
            return
        await chat.serve(websocket)

    @chat_app.post("/dev/token")
    def dev_token(self, body: DevTokenRequest, request: Request) -> JSONResponse:
        """A token for anyone who asks: local demos only (CHAT_DEV_LOGIN=true)."""
        chat = self.resources.chat
        if chat is None or not chat_settings.dev_login:
            return error(404, "dev login is off (CHAT_DEV_LOGIN=false)")
        if not addressed_to_loopback(request.url.hostname):  # DNS rebinding: exposure.py
            return error(403, "dev login answers requests to localhost or 127.0.0.1 only")
        token = issue_token(chat.secret, body.user_id, body.role, chat_settings.token_ttl_s)
        return JSONResponse({"token": token, "user_id": body.user_id, "role": body.role.value})


service = assemble(IntentService, settings)

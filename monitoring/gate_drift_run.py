"""The I/O side of drift in the gate: read the recent window, let both models answer it.

`recent_drift_checks` reads the customer messages of the last GATE_DRIFT_WINDOW_HOURS from the
conversation store (monitoring/data.py, as a monitoring run does), has the champion and the
challenger answer the same texts with their own calibrated fallback policies, and hands both
answers to the Evidently conditions of monitoring/gate_drift.py. The checks go to
`models.promotion.decide_promotion` as `live_checks` (pipelines/assets/promotion.py).

Not judged (both checks pass, saying why): no champion, no conversation store, fewer than
GATE_DRIFT_MIN_MESSAGES recent messages, or too few of them with their text (HTTP predictions
recorded with SERVING_RECORD_TEXT=hash or off keep none). A store that cannot be read is not
"no traffic": both checks fail with the error, since not evaluated is not passed.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import TYPE_CHECKING

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict
from sqlalchemy.exc import SQLAlchemyError

from models.gate_records import Check
from models.registry import IntentRegistry
from models.settings_errors import load_settings
from monitoring.data import read_current
from monitoring.gate_drift import (
    DRIFT_CHECK,
    FALLBACK_CHECK,
    Answers,
    RecentDriftRules,
    judge_recent_answers,
    not_judged,
    window_problem,
)
from monitoring.window import resolve_window

if TYPE_CHECKING:  # scikit-learn is loaded by the registry when a model is, not on import
    from models.inference import IntentInference

logger = logging.getLogger(__name__)
_RULES = RecentDriftRules()  # the defaults live in one place: monitoring/gate_drift.py


class GateDriftSettings(BaseSettings):
    """GATE_DRIFT_*: the recent window the gate judges the challenger's answers on."""

    model_config = SettingsConfigDict(
        env_prefix="GATE_DRIFT_", env_file=".env", extra="ignore", frozen=True
    )

    window_hours: float = Field(_RULES.window_hours, gt=0)
    min_messages: int = Field(_RULES.min_messages, ge=1, description="fewer: not judged")
    max_messages: int = Field(5000, ge=1, description="a seeded sample beyond this")
    fallback_tolerance: float = Field(_RULES.fallback_tolerance, ge=0, le=1)
    max_fallback_rate: float | None = Field(_RULES.max_fallback_rate, gt=0, le=1)
    max_prediction_drift: float = Field(_RULES.max_prediction_drift, gt=0, le=1)

    @model_validator(mode="after")
    def _sample_holds_the_minimum(self) -> GateDriftSettings:
        if self.max_messages < self.min_messages:
            raise ValueError("GATE_DRIFT_MAX_MESSAGES must be ≥ GATE_DRIFT_MIN_MESSAGES")
        return self

    def rules(self) -> RecentDriftRules:
        """The thresholds as the pure checks take them."""
        return RecentDriftRules(
            window_hours=self.window_hours,
            min_messages=self.min_messages,
            fallback_tolerance=self.fallback_tolerance,
            max_fallback_rate=self.max_fallback_rate,
            max_prediction_drift=self.max_prediction_drift,
        )


@dataclass(frozen=True)
class RecentTexts:
    """The recent window as the gate sees it."""

    messages: int  # customer messages with a prediction in the window
    with_text: int  # of which the store kept the text
    texts: tuple[str, ...]  # those texts, or a seeded sample of them

    def describe(self, window: str) -> str:
        """The window in words for the reasons: its length and what was scored of it."""
        if len(self.texts) < self.with_text:
            window += f", a sample of {len(self.texts)} of {self.with_text} texts"
        if self.with_text < self.messages:
            window += f"; {self.messages - self.with_text} messages kept no text"
        return window


def recent_texts(store_url: str, hours: float, max_messages: int) -> RecentTexts:
    """The customer messages of the last `hours`, with the texts of (a sample of) them.

    A message without text (an HTTP prediction kept as a hash or not at all) counts but has
    nothing to score. Past `max_messages` texts, a seeded uniform sample is kept: scoring is
    the gate's cost, and a few thousand messages already show a fallback rate to a point.
    """
    current = read_current(store_url, resolve_window(hours))
    texts = current.messages["text"]
    kept = texts[texts.map(lambda text: isinstance(text, str) and bool(text.strip()))]
    sample = kept.sample(max_messages, random_state=0) if len(kept) > max_messages else kept
    return RecentTexts(len(current.messages), len(kept), tuple(sample.astype(str)))


def answers(model: IntentInference, version: str, texts: list[str]) -> Answers:
    """A model's first-ranked intent and fallback flag on each text (no context, as served
    to HTTP callers that send none; both models are scored the same way)."""
    predictions = model.predict(texts, None, top_k=1)
    return Answers(
        version,
        tuple(prediction.top_k[0].intent for prediction in predictions),
        tuple(prediction.fallback for prediction in predictions),
    )


def recent_drift_checks(
    registry: IntentRegistry,
    challenger_version: str,
    champion_version: str | None,
    store_url: str | None,
    settings: GateDriftSettings | None = None,
) -> list[Check]:
    """`recent_fallback_rate` and `recent_prediction_drift` of the challenger vs the champion."""
    settings = settings or load_settings(GateDriftSettings)
    rules = settings.rules()
    window = f"last {rules.window_hours:g} h"
    if champion_version is None:
        return not_judged("no champion yet: no answers to compare the challenger's with")
    if not store_url:
        return not_judged("no conversation store configured: no recent messages to answer")
    try:
        recent = recent_texts(store_url, rules.window_hours, settings.max_messages)
    except SQLAlchemyError as error:
        reason = f"the recent window could not be read from the store: {type(error).__name__}"
        logger.warning("%s (%s)", reason, str(error).splitlines()[0])
        return [Check(name, False, reason) for name in (FALLBACK_CHECK, DRIFT_CHECK)]
    problem = window_problem(recent.messages, recent.with_text, rules, window)
    if problem is not None:
        logger.info("recent drift of version %s not judged: %s", challenger_version, problem)
        return not_judged(problem)
    window, texts = recent.describe(window), list(recent.texts)
    logger.info("recent window (%s): %d texts answered by both models", window, len(texts))
    champion_model = registry.load_inference(champion_version)
    challenger_model = registry.load_inference(challenger_version)
    # Intents agents taught the challenger since: answering with them is learning, not drift.
    new_intents = frozenset(map(str, challenger_model.classes)) - set(
        map(str, champion_model.classes)
    )
    return judge_recent_answers(
        answers(champion_model, champion_version, texts),
        answers(challenger_model, challenger_version, texts),
        rules,
        window,
        new_intents,
    )

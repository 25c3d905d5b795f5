"""Reading a challenger's shadow sample from the conversation store, and the gate's shadow rules.

Serving records each shadowed message twice in `predictions` (serving/shadow.py): the served
answer (role `served`) and the challenger's (role `shadow`), with one `pair_id`. This module
pairs them back up for the challenger's version against the served version the gate compares
with (the champion), newest first, at most GATE_SHADOW_MAX_SAMPLES pairs, and attaches the
label an agent or /feedback gave the message's text since it was shadowed (the latest one per
text wins, as everywhere in the store; labels of unknown trust are left out). With
SERVING_RECORD_TEXT=hash the label's text is matched by its SHA-256.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from pathlib import Path

import sqlalchemy as sa
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

from conversations import store_engine, tables
from conversations.schema import LabelTrust, PredictionRole
from models.gate_records import Check
from models.registry import CHALLENGER, IntentRegistry
from models.settings_errors import load_settings
from models.shadow_checks import (
    ShadowComparison,
    ShadowPair,
    ShadowRules,
    ShadowSample,
    compare,
    shadow_checks,
)

logger = logging.getLogger(__name__)
_RULES = ShadowRules()  # the defaults live in one place: models/shadow_checks.py
_CHUNK = 500  # pair ids per IN (...) list: well under SQLite's and PostgreSQL's limits


class ShadowGateSettings(BaseSettings):
    """GATE_SHADOW_*: how the gate judges a challenger's shadow sample (models/shadow_checks.py)."""

    model_config = SettingsConfigDict(
        env_prefix="GATE_SHADOW_", env_file=".env", extra="ignore", frozen=True
    )

    min_samples: int = Field(_RULES.min_samples, ge=0, description="0: no sample required")
    min_judged: int = Field(_RULES.min_judged, ge=0)
    min_agreement: float = Field(_RULES.min_agreement, ge=0, le=1)
    fallback_tolerance: float = Field(_RULES.fallback_tolerance, ge=0, le=1)
    confidence_tolerance: float = Field(_RULES.confidence_tolerance, ge=0, le=1)
    min_labelled: int = Field(_RULES.min_labelled, ge=0)
    accuracy_tolerance: float = Field(_RULES.accuracy_tolerance, ge=0, le=1)
    max_samples: int = Field(5000, gt=0, description="newest pairs read")

    def rules(self) -> ShadowRules:
        """The thresholds as the pure checks take them."""
        return ShadowRules(
            min_samples=self.min_samples,
            min_judged=self.min_judged,
            min_agreement=self.min_agreement,
            fallback_tolerance=self.fallback_tolerance,
            confidence_tolerance=self.confidence_tolerance,
            min_labelled=self.min_labelled,
            accuracy_tolerance=self.accuracy_tolerance,
        )


def shadow_gate_settings() -> ShadowGateSettings:
    """The settings from the environment; SettingsProblem naming the variable when one is bad."""
    return load_settings(ShadowGateSettings)


def read_shadow_sample(
    engine: sa.Engine,
    model_name: str,
    challenger_version: str,
    served_version: str | None,
    max_samples: int = 5000,
) -> ShadowSample:
    """The challenger's newest shadow pairs against `served_version`, with later labels."""
    if served_version is None:  # nothing served yet: nothing to compare with
        return ShadowSample(challenger_version, None)
    predictions = tables.predictions
    with engine.connect() as connection:
        shadows = connection.execute(
            sa.select(
                predictions.c.pair_id,
                predictions.c.intent,
                predictions.c.confidence,
                predictions.c.fallback,
                predictions.c.text,
                predictions.c.text_sha256,
                predictions.c.ts,
            )
            .where(
                predictions.c.role == PredictionRole.SHADOW.value,
                predictions.c.model_name == model_name,
                predictions.c.model_version == challenger_version,
                predictions.c.pair_id.is_not(None),
            )
            .order_by(predictions.c.prediction_id.desc())
            .limit(max_samples)
        ).all()
        served = _served_answers(connection, [row.pair_id for row in shadows], served_version)
        since = min((row.ts for row in shadows), default=None)
        truth = _labels_since(connection, since) if since is not None else {}
    pairs = []
    for row in shadows:
        answer = served.get(row.pair_id)
        if answer is None:  # its served row was dropped, or another version served it
            continue
        pairs.append(
            ShadowPair(
                served_intent=answer.intent,
                served_confidence=float(answer.confidence),
                served_fallback=bool(answer.fallback),
                shadow_intent=row.intent,
                shadow_confidence=float(row.confidence),
                shadow_fallback=bool(row.fallback),
                true_intent=truth.get(row.text or row.text_sha256 or ""),
            )
        )
    return ShadowSample(challenger_version, served_version, tuple(pairs))


def _served_answers(
    connection: sa.Connection, pair_ids: Sequence[str], served_version: str
) -> dict[str, sa.Row]:
    predictions = tables.predictions
    found: dict[str, sa.Row] = {}
    for chunk in _chunks(pair_ids, _CHUNK):
        rows = connection.execute(
            sa.select(
                predictions.c.pair_id,
                predictions.c.intent,
                predictions.c.confidence,
                predictions.c.fallback,
            ).where(
                predictions.c.pair_id.in_(chunk),
                predictions.c.role == PredictionRole.SERVED.value,
                predictions.c.model_version == served_version,
            )
        )
        found.update({row.pair_id: row for row in rows})
    return found


def _labels_since(connection: sa.Connection, since: datetime) -> dict[str, str]:
    """Text (and its SHA-256) -> the latest trusted label given since `since`."""
    labels = tables.labels
    rows = connection.execute(
        sa.select(labels.c.text, labels.c.intent)
        .where(labels.c.ts >= since, labels.c.trust != LabelTrust.UNVERIFIED.value)
        .order_by(labels.c.ts, labels.c.label_id)
    )
    truth: dict[str, str] = {}
    for text, intent in rows:  # later rows overwrite earlier ones: the latest label wins
        truth[text] = intent
        truth[hashlib.sha256(text.encode()).hexdigest()] = intent
    return truth


def _chunks(values: Sequence[str], size: int) -> Iterable[Sequence[str]]:
    for start in range(0, len(values), size):
        yield values[start : start + size]


def load_shadow_sample(
    store_url: str | None,
    model_name: str,
    challenger_version: str,
    served_version: str | None,
    max_samples: int = 5000,
) -> ShadowSample:
    """`read_shadow_sample` from the store at `store_url` (an empty sample without a store)."""
    if not store_url:
        return ShadowSample(challenger_version, served_version)
    engine = store_engine.create_engine(store_url)
    try:
        return read_shadow_sample(
            engine, model_name, challenger_version, served_version, max_samples
        )
    finally:
        engine.dispose()


def shadow_gate_checks(
    store_url: str | None, model_name: str, challenger_version: str, champion_version: str | None
) -> list[Check]:
    """The gate's shadow checks of a challenger against the champion, by GATE_SHADOW_* rules."""
    settings = shadow_gate_settings()
    try:
        sample = load_shadow_sample(
            store_url, model_name, challenger_version, champion_version, settings.max_samples
        )
    except sa.exc.SQLAlchemyError as problem:
        # A store that cannot be read is not "no sample": not evaluated is not passed.
        reason = f"shadow sample not read: {type(problem).__name__}: {problem}".splitlines()[0]
        logger.warning("%s", reason)
        return [Check("shadow_store", False, reason)]
    logger.info(
        "shadow sample of version %s against %s: %d pairs",
        challenger_version,
        champion_version,
        len(sample.pairs),
    )
    return shadow_checks(sample, settings.rules())


@dataclass(frozen=True)
class ShadowStatus:
    """The challenger's shadow comparison now and the checks as the gate would judge them."""

    comparison: ShadowComparison | None
    checks: tuple[Check, ...] = ()
    error: str | None = None  # the store could not be read (one line)

    def to_dict(self) -> dict[str, object]:
        """As `make status` prints it under `shadow`."""
        if self.comparison is None:
            return {"error": self.error}
        return asdict(self.comparison) | {"checks": [asdict(check) for check in self.checks]}


def shadow_status(
    store_url: str, model_name: str, challenger_version: str, champion_version: str | None
) -> ShadowStatus:
    """The shadow comparison of a challenger against the champion, for people to read.

    Never creates a store: a SQLite file that does not exist is an empty sample. A store that
    cannot be read is reported as `error`, in one line.
    """
    settings = shadow_gate_settings()
    url = sa.make_url(store_url)
    missing = url.get_backend_name() == "sqlite" and not Path(url.database or "").is_file()
    sample = ShadowSample(challenger_version, champion_version)
    if not missing:
        engine = sa.create_engine(store_url)
        try:
            sample = read_shadow_sample(
                engine, model_name, challenger_version, champion_version, settings.max_samples
            )
        except sa.exc.SQLAlchemyError as problem:
            return ShadowStatus(None, (), f"{type(problem).__name__}: {problem}".splitlines()[0])
        finally:
            engine.dispose()
    return ShadowStatus(compare(sample), tuple(shadow_checks(sample, settings.rules())))


def challenger_shadow(
    registry: IntentRegistry, store_url: str, champion_version: str | None
) -> ShadowStatus | None:
    """The registry challenger's shadow status against `champion_version`; None without one."""
    challenger = registry.version_by_alias(CHALLENGER)
    if challenger is None or str(challenger.version) == champion_version:
        return None
    return shadow_status(store_url, registry.name, str(challenger.version), champion_version)

"""Judging a held challenger again once serving has shadowed it on enough live messages.

With GATE_SHADOW_MIN_SAMPLES above 0, `model_promotion` holds a challenger whose only failing
check is `shadow_sample` (models/shadow_checks.py): it stays `challenger`, serving shadows it,
and the next `model_promotion` of that version judges it again. `held_challenger_sensor` is
what starts that next judgement: while a held challenger exists it counts the challenger's
shadow pairs against the champion in the store (models/shadow_sample.py, the reader the gate
uses) and, once they reach the minimum, requests `shadow_rejudge_job`, a run of
`model_promotion` alone. Its inputs (`intent_model`, `training_examples`) are read from the
lake, where the training run that held the version left them; the sensor requests the run
only when the latest `intent_model` materialisation is the held version, so the run judges
that version and no other.

One request per (version, minimum): the run key says so and the cursor remembers it, so a
tick after the request, or a held version whose count stays above the minimum, adds nothing.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import dagster as dg
import sqlalchemy as sa

from models.promotion_state import held_for_shadow
from models.registry import CHALLENGER, CHAMPION
from models.shadow_sample import load_shadow_sample, shadow_gate_settings
from pipelines.automation import RUN_KIND_TAG
from pipelines.resources import ConversationSources, MlflowRegistry

logger = logging.getLogger(__name__)
INTENT_MODEL = dg.AssetKey("intent_model")
VERSION_TAG = "supportloop/held-version"

# One step, in the run's own process: a second process would only import everything again.
shadow_rejudge_job = dg.define_asset_job(
    "shadow_rejudge_job",
    selection=dg.AssetSelection.assets("model_promotion"),
    description="Judge the held challenger again on its shadow sample (inputs from the lake).",
    executor_def=dg.in_process_executor,
    # Counted as a training run (one at a time, deploy/dagster/dagster.yaml): a promotion moves
    # registry aliases, so it queues behind a training run rather than racing it.
    tags={RUN_KIND_TAG: "training"},
)


@dataclass(frozen=True)
class HeldChallenger:
    """The held challenger's shadow pairs against the champion, and the minimum it waits for."""

    version: str
    champion: str | None
    pairs: int
    needed: int

    @property
    def key(self) -> str:
        """Run key and cursor: one request per version and minimum."""
        return f"shadow-rejudge-{self.version}-min{self.needed}"


def find_held(registry_resource: MlflowRegistry, store_url: str | None) -> HeldChallenger | None:
    """The challenger held for a larger shadow sample, with its pair count; None without one."""
    registry = registry_resource.registry()
    challenger = registry.version_by_alias(CHALLENGER)
    if challenger is None or not held_for_shadow(registry, str(challenger.version)):
        return None
    champion = registry.version_by_alias(CHAMPION)
    champion_version = str(champion.version) if champion else None
    settings = shadow_gate_settings()
    sample = load_shadow_sample(
        store_url, registry.name, str(challenger.version), champion_version, settings.max_samples
    )
    return HeldChallenger(
        str(challenger.version), champion_version, len(sample.pairs), settings.min_samples
    )


def _latest_intent_model(instance: dg.DagsterInstance) -> str | None:
    """The version the lake's `intent_model` stands for (its latest materialisation's)."""
    event = instance.get_latest_materialization_event(INTENT_MODEL)
    materialization = event.asset_materialization if event else None
    if materialization is None or "version" not in materialization.metadata:
        return None
    return str(materialization.metadata["version"].value)


@dg.sensor(
    job=shadow_rejudge_job,
    minimum_interval_seconds=300,
    default_status=dg.DefaultSensorStatus.RUNNING,
)
def held_challenger_sensor(
    context: dg.SensorEvaluationContext,
    mlflow_registry: MlflowRegistry,
    sources: ConversationSources,
) -> dg.SensorResult | dg.SkipReason:
    """Judge a held challenger again once its shadow pairs reach GATE_SHADOW_MIN_SAMPLES."""
    try:
        held = find_held(mlflow_registry, sources.store_url)
    except sa.exc.SQLAlchemyError as problem:  # the next tick tries again
        reason = f"shadow pairs not read: {type(problem).__name__}: {problem}".splitlines()[0]
        logger.warning("%s", reason)
        return dg.SkipReason(reason)
    if held is None:
        return dg.SkipReason("no challenger held for a larger shadow sample")
    counts = (
        f"version {held.version} has {held.pairs} shadow pairs against champion "
        f"{held.champion} ({held.needed} needed, GATE_SHADOW_MIN_SAMPLES)"
    )
    if held.pairs < held.needed:
        return dg.SkipReason(f"held: {counts}")
    if context.cursor == held.key:
        return dg.SkipReason(f"re-judgement already requested: {counts}")
    lake_version = _latest_intent_model(context.instance)
    if lake_version != held.version:
        # model_promotion would judge the lake's version instead: the next training run that
        # keeps the held version (or trains a newer one) decides.
        return dg.SkipReason(
            f"{counts}, but the latest intent_model is version {lake_version}: not re-judged here"
        )
    request = dg.RunRequest(
        run_key=held.key,
        tags={VERSION_TAG: held.version, "trigger": f"shadow sample reached: {counts}"},
    )
    return dg.SensorResult(run_requests=[request], cursor=held.key)

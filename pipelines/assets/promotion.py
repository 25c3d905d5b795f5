"""The promotion asset: the new version becomes the challenger, and the gate decides."""

from dataclasses import asdict
from typing import TYPE_CHECKING

import dagster as dg
import pandas as pd

from models import faults
from models.faults import Boundary
from models.gate_records import Check, GateDecision, PromotionRules
from models.promotion import decide_promotion
from models.promotion_state import apply_pending, held_for_shadow, record_decision
from models.registry import CHALLENGER, TAG_GATE, IntentRegistry
from models.shadow_checks import waits_for_shadow_sample
from models.shadow_sample import shadow_gate_checks
from monitoring.alerts import gate_failure_alert
from monitoring.gate_drift_run import recent_drift_checks
from pipelines.assets.training import GROUP
from pipelines.resources import AlertNotifier, ConversationSources, MlflowRegistry

if TYPE_CHECKING:
    from models.baselines import BaselineScore

_RULES = PromotionRules()  # the defaults live in one place: models/gate_records.py


class PromotionConfig(dg.Config):
    """Gate thresholds (see models/promotion.py), editable per run in the launchpad."""

    min_improvement: float = _RULES.min_improvement
    # Unset: a first model must beat the run's baselines by baseline_margin. Set it for your
    # data (Banking77: 0.85, data/README.md) and the floor decides instead.
    accuracy_floor: float | None = _RULES.accuracy_floor
    baseline_margin: float = _RULES.baseline_margin
    max_intent_f1_drop: float = _RULES.max_intent_f1_drop
    min_intent_support: int = _RULES.min_intent_support
    min_feedback_labels: int = _RULES.min_feedback_labels
    feedback_tolerance: float = _RULES.feedback_tolerance
    max_test_loss_when_taught: float = _RULES.max_test_loss_when_taught
    min_invariance: float = _RULES.min_invariance
    min_functionality: float = _RULES.min_functionality


def _log_baselines(
    registry: IntentRegistry, version: str, baselines: "tuple[BaselineScore, ...]"
) -> None:
    """The gate's baselines as metrics of the version's MLflow run, beside its own scores."""
    run_id = registry.version(version).run_id
    if run_id is None:
        return
    for baseline in baselines:
        for metric, value in (
            ("test_accuracy", baseline.test_accuracy),
            ("macro_f1", baseline.macro_f1),
        ):
            registry.client.log_metric(run_id, f"baseline_{baseline.name}_{metric}", value)


def _already_judged(
    context: dg.AssetExecutionContext,
    registry: IntentRegistry,
    version: str,
    retrain_reason: str | None,
) -> dg.MaterializeResult:
    """Nothing to decide: finish the version's interrupted promotion, if any, and say why."""
    finished = apply_pending(registry, version)
    if finished is not None:
        context.log.warning("finished the interrupted promotion of %s: %s", version, finished)
    champion = registry.version_by_alias("champion")
    # A version the retrain rule kept says why no new one was trained.
    reason = retrain_reason or f"version {version} was already judged"
    context.log.info("nothing to decide: %s", reason)
    return dg.MaterializeResult(
        value={"version": version, "decided": False},
        metadata={
            "decided": False,
            "reason": reason,
            "champion": champion.version if champion else "none",
        },
    )


def _live_checks(
    registry: IntentRegistry, version: str, champion: str | None, store_url: str | None
) -> list[Check]:
    """The gate's checks on live traffic: shadow pairs, then the recent window's drift."""
    # The challenger's answers to live traffic beside the champion's (serving/shadow.py).
    shadow = shadow_gate_checks(store_url, registry.name, version, champion)
    # Evidently conditions on both models' answers to the recent window (monitoring/gate_drift.py).
    recent = recent_drift_checks(registry, version, champion, store_url)
    return [*shadow, *recent]


def _judge(
    registry: IntentRegistry,
    version: str,
    rules: PromotionRules,
    sources: ConversationSources,
    training_examples: pd.DataFrame,
) -> GateDecision:
    """The gate's decision on `version` against the current champion, offline and live."""
    champion_version = registry.version_by_alias("champion")
    champion = str(champion_version.version) if champion_version else None
    from models.gate import gate_inputs  # scikit-learn: only when a version is judged

    inputs = gate_inputs(
        registry.load_pipeline(version),
        version,
        registry.load_pipeline(champion_version.version) if champion_version else None,
        champion,
        training_examples,
        rules,
        sources.max_text_chars,  # MAX_TEXT_CHARS: the limit ingestion kept the texts under
    )
    _log_baselines(registry, version, inputs.baselines)
    live = _live_checks(registry, version, champion, sources.store_url)
    return decide_promotion(inputs, live_checks=live)


def _decided_result(
    registry: IntentRegistry, decision: GateDecision, held: bool
) -> dg.MaterializeResult:
    """The decision as the asset's value; its verdict and checks, and the champion, as metadata."""
    champion = registry.version_by_alias("champion")
    return dg.MaterializeResult(
        value=decision.to_dict(),
        metadata={
            "decided": True,
            "passed": decision.passed,
            "held": held,
            "champion": str(champion.version) if champion else "none",
            "checks": dg.MetadataValue.json([asdict(check) for check in decision.checks]),
        },
    )


@dg.asset(group_name=GROUP, kinds={"mlflow"})
def model_promotion(
    context: dg.AssetExecutionContext,
    config: PromotionConfig,
    mlflow_registry: MlflowRegistry,
    sources: ConversationSources,
    notifier: AlertNotifier,
    intent_model: dict,
    training_examples: pd.DataFrame,
) -> dg.MaterializeResult:
    """Make the new version the challenger; promote it to champion if it passes the gate.

    A version already judged is not judged again, unless it was held for a larger shadow sample
    (models/shadow_checks.py); a passing decision whose promotion an interrupted run did not
    finish is finished (models/promotion_state.py).
    """
    registry = mlflow_registry.registry()
    version = str(intent_model["version"])
    if registry.version(version).tags.get(TAG_GATE) and not held_for_shadow(registry, version):
        return _already_judged(context, registry, version, intent_model.get("retrain_reason"))
    registry.set_alias(CHALLENGER, version)
    faults.reached(Boundary.CHALLENGER_SET)
    rules = PromotionRules(**config.model_dump())
    decision = _judge(registry, version, rules, sources, training_examples)
    # Only the shadow sample too small: held as challenger (serving keeps shadowing it) and
    # judged again by the next run, not refused.
    held = not decision.passed and waits_for_shadow_sample(decision.checks)
    record_decision(registry, decision, held)
    faults.reached(Boundary.GATE_RECORDED)
    if decision.passed:
        apply_pending(registry, version)
    elif held:
        context.log.info("version %s held: waiting for a larger shadow sample", version)
    else:
        notifier.send(gate_failure_alert(decision))
    for check in decision.checks:
        context.log.info("gate %s: %s (%s)", check.name, check.passed, check.reason)
    return _decided_result(registry, decision, held)

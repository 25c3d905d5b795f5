"""Training assets: the intent model tracked in MLflow (its promotion: assets/promotion.py)."""

import hashlib
from typing import TYPE_CHECKING, Any

import dagster as dg
import numpy as np
import pandas as pd
from pydantic import Field, ValidationError

from models.candidate_profile import profile_candidates
from models.fallback_objective import FallbackSettings
from models.out_of_scope import OutOfScopeSettings
from models.registry import IntentRegistry
from models.retraining import (
    ExampleIndex,
    RetrainPolicy,
    column_hashes,
    decide_retrain,
    row_hashes,
)
from models.search import SearchSettings
from models.selection import SelectionBudget
from models.settings_errors import env_name
from pipelines.assets.training_results import recovered_result, run_link, trained_result
from pipelines.resources import ConversationSources, MlflowRegistry
from pipelines.retrain_skip import KeptIndex, KeptVersion, registry_identity, remember_base
from pipelines.retraining import (
    TAG_TRAINING_CONFIG,
    forced_reasons,
    kept_version_result,
    last_trained,
    log_index,
)

if TYPE_CHECKING:
    from mlflow.entities.model_registry import ModelVersion

    from models.recovery import Recovery
    from models.training import TrainingOutcome

GROUP = "training"
# Bump when training code changes in a way that should invalidate reuse of a registered version.
# 2: the chosen candidate is refitted on train + validation and temperature-calibrated.
TRAINING_CODE_VERSION = "2"
FINGERPRINT_COLUMNS = ("message_id", "text", "context", "intent", "split")
# When to retrain, not what to train: left out of the fingerprint and the configuration digest.
RETRAIN_FIELDS = {"force_retrain", "retrain_min_new_examples", "retrain_min_new_fraction"}
# SearchSettings' fields and the run config keys that set them.
_SEARCH_KEYS = {"trials": "search_trials", "seconds": "search_budget_s", "space": "search_space"}


class TrainingConfig(dg.Config):
    """The search space and fallback calibration of a training run."""

    # Unset: TRAIN_MODEL_PROFILE's candidates (models/candidate_profile.py; default or light).
    candidates: list[str] = Field(default_factory=profile_candidates)
    fallback_accuracy_budget: float = 0.02
    min_examples_per_intent: int = 5
    # Unset: TRAIN_SELECTION_MAX_EXAMPLES / TRAIN_SELECTION_SECONDS (models/selection.py).
    selection_max_examples: int | None = None
    selection_budget_s: float | None = None
    # Unset: TRAIN_SEARCH_TRIALS / _SECONDS / _SPACE (models/search.py); 1 trial: no search.
    # search_space replaces declared knob ranges: {candidate: {knob: [low, high]}}.
    search_trials: int | None = None
    search_budget_s: float | None = None
    search_space: dict[str, dict[str, list[float]]] | None = None
    # The retrain rule (models/retraining.py). Unset: TRAIN_MIN_NEW_EXAMPLES/_FRACTION.
    force_retrain: bool = False
    retrain_min_new_examples: int | None = None
    retrain_min_new_fraction: float | None = None

    def retrain_policy(self) -> RetrainPolicy:
        """The retrain thresholds: this run's config over the environment's."""
        chosen: dict[str, Any] = {
            "min_new_examples": self.retrain_min_new_examples,
            "min_new_fraction": self.retrain_min_new_fraction,
        }
        return RetrainPolicy(**{k: v for k, v in chosen.items() if v is not None})

    def digest(self) -> str:
        """What to train (search space, calibration, code version), not when: for the rule."""
        payload = f"{self.model_dump_json(exclude=RETRAIN_FIELDS)}|{TRAINING_CODE_VERSION}"
        return hashlib.sha256(f"{payload}|{fallback_objective()}".encode()).hexdigest()[:16]

    def selection_budget(self) -> SelectionBudget:
        """The search's sample size and seconds: this run's config over the environment's."""
        chosen: dict[str, Any] = {
            "max_examples": self.selection_max_examples,
            "seconds": self.selection_budget_s,
        }
        return SelectionBudget(**{k: v for k, v in chosen.items() if v is not None})

    def search_settings(self) -> SearchSettings:
        """The hyper-parameter search's budget and ranges: this run's config over the env's."""
        chosen: dict[str, Any] = {
            "trials": self.search_trials,
            "seconds": self.search_budget_s,
            "space": self.search_space,
        }
        try:
            return SearchSettings(**{k: v for k, v in chosen.items() if v is not None})
        except ValidationError as problem:  # one line naming the launchpad key (or variable)
            error = problem.errors(include_url=False, include_input=False)[0]
            field = str(error["loc"][0]) if error["loc"] else ""
            key = _SEARCH_KEYS.get(field) if chosen.get(field) is not None else None
            name = f"ops.intent_model.config.{key}" if key else env_name(SearchSettings, field)
            message = str(error["msg"]).removeprefix("Value error, ")
            raise ValueError(f"bad run config {name}: {message}") from None


def training_fingerprint(
    examples: pd.DataFrame, config: TrainingConfig, hashed: pd.DataFrame | None = None
) -> str:
    """Identifies the exact data, splits and configuration a model is trained from.

    Each example is its message, text, context, intent and split: a context-aware model learns
    from the context too, so a change of context alone is new data, and equal words of
    different messages stay different examples. Row order does not matter. `hashed`: the
    examples' `column_hashes`, when already computed.
    """
    # One 64-bit hash per example, sorted: the same examples in any order give the same digest.
    hashes = np.sort(row_hashes(examples, FINGERPRINT_COLUMNS, hashed))
    digest = hashlib.sha256(hashes.tobytes())
    digest.update(f"|{len(hashes)}|".encode())
    digest.update(
        f"{config.model_dump_json(exclude=RETRAIN_FIELDS)}|{TRAINING_CODE_VERSION}".encode()
    )
    digest.update(fallback_objective().encode())
    return digest.hexdigest()[:24]


def fallback_objective() -> str:
    """TRAIN_FALLBACK_* and the recall target: a version whose fallback was chosen for another
    objective is not the model asked for, so changing them retrains instead of reusing."""
    return f"{FallbackSettings().model_dump_json()}|{OutOfScopeSettings().target_recall}"


def _splits(examples: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    train, validation, test = (
        examples[examples["split"] == name] for name in ("train", "validation", "test")
    )
    return train, validation, test


def run_params(
    config: TrainingConfig,
    budget: SelectionBudget,
    search: SearchSettings,
    outcome: "TrainingOutcome",
) -> dict[str, Any]:
    """The training run's MLflow params: the run config, the budgets spent, what was left out."""
    return {
        "fallback_accuracy_budget": config.fallback_accuracy_budget,
        "min_examples_per_intent": config.min_examples_per_intent,
        "excluded_intents": ",".join(outcome.excluded_intents)[:500] or "none",
        "selection_max_examples": budget.max_examples,
        "selection_budget_s": budget.seconds,
        "selection_examples": outcome.selection_examples,
        "skipped_candidates": "; ".join(s.reason for s in outcome.skipped)[:500] or "none",
        "search_trials": search.trials,
        "search_budget_s": search.seconds,
        "search_seed": search.seed,
    }


def _train_and_register(
    config: TrainingConfig,
    mlflow_registry: MlflowRegistry,
    registry: IntentRegistry,
    examples: pd.DataFrame,
    fingerprint: str,
    dagster_run_id: str,
) -> tuple["TrainingOutcome", "ModelVersion"]:
    """Fit the search space on the examples' splits; log the chosen model and register it."""
    # Imported here: a run whose retrain rule keeps the model loads no scikit-learn (~1 s).
    from models.candidates import resolve
    from models.tracking import log_and_register
    from models.training import train_intent_model

    candidates = resolve(config.candidates)
    splits = _splits(examples)
    budget, search = config.selection_budget(), config.search_settings()
    outcome = train_intent_model(
        candidates,
        *splits,
        config.fallback_accuracy_budget,
        config.min_examples_per_intent,
        budget,
        search=search,
    )
    version = log_and_register(
        outcome,
        registry,
        mlflow_registry.experiment_name,
        mlflow_registry.artifact_root,
        fingerprint,
        params=run_params(config, budget, search, outcome),
        run_tags={
            "dagster.run_id": dagster_run_id,
            "dagster.asset": "intent_model",
            TAG_TRAINING_CONFIG: config.digest(),
        },
        reference=pd.concat(splits),  # snapshot + one MLflow Dataset each
    )
    return outcome, version


def _recover(
    context: dg.AssetExecutionContext,
    registry: IntentRegistry,
    experiment_name: str,
    fingerprint: str,
) -> "Recovery":
    """Settle what an interrupted earlier run left (models/recovery.py), logging its failed runs."""
    from models.recovery import recover  # with MLflow and scikit-learn: only when training

    recovered = recover(registry, experiment_name, fingerprint)
    for run_id in recovered.failed_runs:
        context.log.warning("MLflow run %s was interrupted: marked FAILED", run_id)
    return recovered


def _record_index(
    registry: IntentRegistry,
    version: "ModelVersion",
    index: ExampleIndex,
    kept: KeptIndex | None,
    registry_name: str,
    digest: str,
) -> None:
    """Store the examples' index with the new version's run, and in the lake when kept there."""
    if version.run_id is not None:
        log_index(registry, version.run_id, index)
        if kept is not None:
            kept.write(KeptVersion(str(version.version), registry_name, digest), index)


@dg.asset(group_name=GROUP, kinds={"scikit-learn", "mlflow"})
def intent_model(
    context: dg.AssetExecutionContext,
    config: TrainingConfig,
    mlflow_registry: MlflowRegistry,
    sources: ConversationSources,
    training_examples: pd.DataFrame,
) -> dg.MaterializeResult:
    """Fit the search space, log the chosen model to MLflow and register it as a new version.

    First settles what an interrupted earlier run left (models/recovery.py): its RUNNING MLflow
    runs end FAILED, and a complete version, or a finished run never registered, for the same
    data and configuration is used instead of training again.
    """
    registry = mlflow_registry.registry()
    # Each column hashed once, for the fingerprint and the example index.
    hashed = column_hashes(training_examples, FINGERPRINT_COLUMNS)
    fingerprint = training_fingerprint(training_examples, config, hashed)
    recovered = _recover(context, registry, mlflow_registry.experiment_name, fingerprint)
    if recovered.version is not None:
        context.log.info(
            "data and configuration unchanged: version %s (%s)",
            recovered.version.version,
            recovered.outcome.value,
        )
        return recovered_result(registry, recovered)
    index = ExampleIndex.from_examples(training_examples, hashed)
    last = last_trained(registry)
    decision = decide_retrain(
        config.retrain_policy(),
        index,
        config.digest(),
        last,
        forced_reasons(config.force_retrain, context.run.tags),
    )
    context.log.info("retrain rule: %s", decision.reason)
    # The base version's index in the lake: the next run's training_examples can apply the
    # rule without MLflow (pipelines/retrain_skip.py).
    kept = KeptIndex.of(sources.lake_dir)
    registry_name = registry_identity(mlflow_registry)
    if not decision.retrain:
        remember_base(kept, last, registry_name)
        return kept_version_result(registry, decision)
    outcome, version = _train_and_register(
        config, mlflow_registry, registry, training_examples, fingerprint, context.run.run_id
    )
    _record_index(registry, version, index, kept, registry_name, config.digest())
    link = run_link(mlflow_registry, registry, version.run_id)
    if not link:
        context.log.warning("version %s names no MLflow run: no run link", version.version)
    return trained_result(registry, version, outcome, decision, link)

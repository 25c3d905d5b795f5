"""Skip the training steps when the retrain rule must keep the model (no MLflow query).

A run whose new labelled examples stay under the retrain rule's thresholds (models/retraining.py)
keeps the newest version: `intent_model` used to find that out itself, after opening the MLflow
store, settling interrupted runs and reading the version's example index back from its run, and
`model_promotion` then decided nothing. Both cost a fixed ~2 s of CPU a run, a fifth of a 1 %
incremental run at 100k messages (bench/README.md, "Data scaling").

So `intent_model` keeps a copy of its base version's example index in the lake (`KeptIndex`,
beside what it names: the version, the registry and the configuration digest), and
`training_examples` applies the same rule to the examples it just built against that copy. When
the rule keeps the model, `training_examples` records why (an observation, `skipped: …` in the
`make pipeline` summary) and yields nothing, so Dagster skips `intent_model` and
`model_promotion`. The examples in the lake stay those of the last training (behind the data by
less than the thresholds), as the model does.

Decided in `training_examples` only when all of these hold; otherwise the steps run as before:

- the run is not forced and selects the training steps (`forced` in pipelines/example_inputs.py);
- the last `training_examples` materialisation recorded the same training settings, and
  `intent_model` and `model_promotion` both finished after it (no interrupted training, no
  pending promotion);
- the last `model_promotion` did not hold a challenger for a larger shadow sample (it must be
  judged again);
- the lake's copy names the version the last `intent_model` stood for and the same registry;
- the rule keeps that version for these examples.

What the copy cannot see: a version registered from outside this Dagster instance (another
deployment sharing the registry) counts from the next run that trains, or a forced run.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import Any

import dagster as dg
import pandas as pd
from upath import UPath

from models.location import location, read_parquet, write_parquet
from models.retraining import (
    ExampleIndex,
    RetrainDecision,
    RetrainPolicy,
    TrainedVersion,
    decide_retrain,
)
from pipelines.example_inputs import SETTINGS_DIGEST, TRAINING_STEPS, forced
from pipelines.resources import MlflowRegistry

logger = logging.getLogger(__name__)
INDEX_FOLDER = "retrain_index"  # under the lake
INDEX_FILE = "example_index.parquet"
ABOUT_FILE = "version.json"


@dataclass(frozen=True)
class KeptVersion:
    """What the lake's index copy stands for."""

    version: str
    registry: str  # registry_identity of the registered model the version belongs to
    config_digest: str | None  # the training configuration digest its run recorded


class KeptIndex:
    """The base version's example index, kept in the lake by `intent_model`."""

    def __init__(self, lake: UPath) -> None:
        self.folder = lake / INDEX_FOLDER

    @classmethod
    def of(cls, lake_dir: str | None) -> KeptIndex | None:
        """The copy's place in the lake (None when the run has no lake)."""
        return cls(location(lake_dir)) if lake_dir else None

    def write(self, about: KeptVersion, index: ExampleIndex) -> None:
        """Replace the copy (the index first: a copy whose `version.json` is missing is none)."""
        self.folder.mkdir(parents=True, exist_ok=True)
        (self.folder / ABOUT_FILE).unlink(missing_ok=True)
        write_parquet(index.to_frame(), self.folder / INDEX_FILE)
        (self.folder / ABOUT_FILE).write_text(json.dumps(asdict(about)), encoding="utf-8")

    def about(self) -> KeptVersion | None:
        """What the copy stands for, None when there is none (or it cannot be read)."""
        try:
            return KeptVersion(**json.loads((self.folder / ABOUT_FILE).read_text("utf-8")))
        except (OSError, ValueError, TypeError) as error:
            logger.info("no kept example index: %s", error)
            return None

    def index(self) -> ExampleIndex | None:
        """The kept index itself."""
        try:
            return ExampleIndex.from_frame(read_parquet(self.folder / INDEX_FILE))
        except (OSError, ValueError) as error:
            logger.info("kept example index unreadable: %s", error)
            return None


def intent_model_config(run_config: Mapping[str, Any]) -> dict[str, Any]:
    """`ops.intent_model.config` of a run config ({} when unset): the rule's thresholds."""
    ops: Mapping[str, Any] = run_config.get("ops") or {}
    model: Mapping[str, Any] = ops.get("intent_model") or {}
    return dict(model.get("config") or {})


def remember_base(kept: KeptIndex | None, last: TrainedVersion | None, registry: str) -> None:
    """Keep the index of the version the rule kept, when the lake's copy is of another one."""
    if kept is None or last is None or last.index is None:
        return
    about = KeptVersion(last.version, registry, last.config_digest)
    if kept.about() != about:
        kept.write(about, last.index)


def _latest(instance: dg.DagsterInstance, name: str) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(dg.AssetKey(name), limit=1).records
    return records[0] if records else None


def _metadata(record: dg.EventLogRecord | None) -> Mapping[str, Any]:
    materialization = record.asset_materialization if record else None
    if materialization is None:
        return {}
    return {k: getattr(v, "value", v) for k, v in materialization.metadata.items()}


def _chain_finished(context: dg.AssetExecutionContext, settings: str) -> str | None:
    """Why the Dagster side rules a skip out (None: it does not)."""
    run = context.run
    if reason := forced(run.run_config, run.tags):
        return f"forced: {reason}"
    selection = run.asset_selection
    if selection and not {dg.AssetKey(name) for name in TRAINING_STEPS} <= selection:
        return "the run does not select the training steps"
    last = _latest(context.instance, "training_examples")
    if last is None or _metadata(last).get(SETTINGS_DIGEST) != settings:
        return "no examples built with these settings yet"
    for name in TRAINING_STEPS[1:]:
        done = _latest(context.instance, name)
        if done is None or done.storage_id < last.storage_id:
            return f"{name} did not finish after the last examples"
    if _metadata(_latest(context.instance, "model_promotion")).get("held"):
        return "a challenger is held for a larger shadow sample: it is judged again"
    return None


def registry_identity(mlflow_registry: MlflowRegistry) -> str:
    """Which registered model a version number belongs to, as a digest: a tracking URI may
    hold credentials, and the lake is no place for them."""
    where = mlflow_registry.registry_uri or mlflow_registry.tracking_uri
    return hashlib.sha256(f"{where}#{mlflow_registry.model_name}".encode()).hexdigest()[:16]


@dataclass(frozen=True)
class RuleInputs:
    """What the retrain rule reads besides the examples: thresholds, configuration, registry."""

    policy: RetrainPolicy
    config_digest: str
    registry: str  # registry_identity of the model this run trains


def decide_keep(
    context: dg.AssetExecutionContext,
    examples: pd.DataFrame,
    settings: str,
    kept: KeptIndex | None,
    rule: RuleInputs,
) -> RetrainDecision | None:
    """The retrain rule's decision when it can be taken here, None when `intent_model` must.

    `settings`: this run's settings digest (pipelines/example_inputs.py); `kept`: None when
    the run has no lake.
    """
    if kept is None:
        return None
    if (why := _chain_finished(context, settings)) is not None:
        logger.info("retrain rule left to intent_model: %s", why)
        return None
    about = kept.about()
    model = _metadata(_latest(context.instance, "intent_model"))
    stands_for = str(model.get("version"))
    if about is None or about.registry != rule.registry or stands_for != about.version:
        logger.info("retrain rule left to intent_model: no kept index of version %s", stands_for)
        return None
    base = TrainedVersion(about.version, kept.index(), about.config_digest)
    current = ExampleIndex.from_examples(examples)
    return decide_retrain(rule.policy, current, rule.config_digest, base)

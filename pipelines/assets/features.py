"""Feature assets: labelled training examples with frozen splits, and per-message features."""

import time
from collections.abc import Iterator
from typing import Any

import dagster as dg
import pandas as pd

from features import FeatureExtractor, FeatureSettings
from models.examples import draw_validation, unsplit_examples
from models.location import location
from models.retraining import RetrainDecision
from pipelines.assets.training import TRAINING_CODE_VERSION, TrainingConfig
from pipelines.example_contexts import ContextReuse, ContextStore, filled_contexts
from pipelines.example_inputs import (
    INPUT_DIGEST,
    SETTINGS_DIGEST,
    InputRows,
    decide_skip,
    settings_digest,
)
from pipelines.metadata import count_mapping, markdown_counts
from pipelines.resources import ConversationSources, MlflowRegistry
from pipelines.retrain_skip import (
    KeptIndex,
    RuleInputs,
    decide_keep,
    intent_model_config,
    registry_identity,
)
from pipelines.source_report import no_labelled_data_message, source_yields

GROUP = "features"


class SplitConfig(dg.Config):
    """How labelled examples are split (the test split is frozen by text hash).

    `test_sources`: lineage names (`folder/file`) of labelled CSVs that are test whole, e.g. a
    data set's official test file; `make evaluate` sets it with `test_fraction: 0`, so the rest
    of the data is all train + validation (models/examples.py).
    """

    test_fraction: float = 0.2
    validation_fraction: float = 0.1
    seed: int = 0
    test_sources: list[str] = []


# output_required=False: a run that changed no labelled example skips this step's output, and
# Dagster skips intent_model and model_promotion after it (pipelines/example_inputs.py).
@dg.asset(group_name=GROUP, kinds={"pandas", "parquet"}, output_required=False)
def training_examples(
    context: dg.AssetExecutionContext,
    config: SplitConfig,
    sources: ConversationSources,
    mlflow_registry: MlflowRegistry,
    conversations: pd.DataFrame,
) -> Iterator[dg.Output[pd.DataFrame]]:
    """Each labelled customer message with its context, its winning label and a split.

    No labelled example from any source stops the run with one message naming every source as
    read and what to set (a Dagster Failure: the UI and `make pipeline` show it, no traceback).
    When no labelled example and no training setting changed since the last finished training,
    nothing is built: the step records why (an observation) and the training steps are skipped.
    So are they when the retrain rule keeps the model for the examples built (too few changed:
    pipelines/retrain_skip.py); the examples are then not written, and no validation split is
    drawn (scikit-learn is not even imported).
    """
    settings = settings_digest(
        context.run.run_config, TRAINING_CODE_VERSION, config.model_dump_json()
    )
    inputs = InputRows.of(conversations)  # hashed once: the digest and the context store's
    digest = inputs.digest()
    skip = decide_skip(context, digest, settings)
    if skip.skip:
        context.log.info(skip.reason)
        _observe(context, skip.reason, {INPUT_DIGEST: digest, SETTINGS_DIGEST: settings})
        return
    examples, reuse = _unsplit(context, config, sources, conversations, inputs, skip.reason)
    keep = _keep_decision(context, sources, mlflow_registry, examples, settings)
    if keep is not None and not keep.retrain:
        reason = f"retrain rule: {keep.reason}; intent_model and model_promotion skipped"
        context.log.info(reason)
        _observe(context, reason, {**keep.metadata(), "built_because": skip.reason})
        return
    examples = draw_validation(
        examples, config.test_fraction, config.validation_fraction, config.seed
    )
    splits = examples["split"].value_counts()
    context.log.info(
        "%d examples of %d intents: %s",
        len(examples),
        examples["intent"].nunique(),
        ", ".join(f"{name} {count}" for name, count in splits.items()),
    )
    built = {INPUT_DIGEST: digest, SETTINGS_DIGEST: settings, "built_because": skip.reason}
    yield dg.Output(examples, metadata={**built, **_examples_metadata(examples, reuse)})


def _observe(context: dg.AssetExecutionContext, reason: str, metadata: dict[str, Any]) -> None:
    """Record why no examples were written (`skipped: …` in the `make pipeline` summary)."""
    observed = {"skipped": True, **metadata, "reason": reason}
    context.log_event(dg.AssetObservation(asset_key=context.asset_key, metadata=observed))


def _unsplit(
    context: dg.AssetExecutionContext,
    config: SplitConfig,
    sources: ConversationSources,
    conversations: pd.DataFrame,
    inputs: InputRows,
    built_because: str,
) -> tuple[pd.DataFrame, ContextReuse]:
    """The examples before the validation draw (models/examples.py), contexts filled or kept.

    No labelled example at all: a Failure naming every source and what it yielded.
    """
    store = ContextStore(location(sources.lake_dir)) if sources.lake_dir else None
    contexts, reuse = filled_contexts(conversations, inputs, store)
    # One line (each is an event-log write): why the examples are built, what was reused.
    context.log.info("building the examples: %s; %s", built_because, reuse.describe())
    examples = unsplit_examples(
        conversations, config.test_fraction, contexts, frozenset(config.test_sources)
    )
    if examples.empty:
        yields = source_yields(sources.config(), conversations)
        raise dg.Failure(
            description=no_labelled_data_message(yields),
            metadata={item.setting: f"{item.where}: {item.summary()}" for item in yields},
            allow_retries=False,
        )
    return examples, reuse


def _keep_decision(
    context: dg.AssetExecutionContext,
    sources: ConversationSources,
    mlflow_registry: MlflowRegistry,
    examples: pd.DataFrame,
    settings: str,
) -> RetrainDecision | None:
    """The retrain rule's decision for these examples when it can be taken here (None: by
    `intent_model`); the rule reads no split."""
    training = TrainingConfig(**intent_model_config(context.run.run_config))
    rule = RuleInputs(
        training.retrain_policy(), training.digest(), registry_identity(mlflow_registry)
    )
    return decide_keep(context, examples, settings, KeptIndex.of(sources.lake_dir), rule)


def _examples_metadata(examples: pd.DataFrame, reuse: ContextReuse) -> dict[str, Any]:
    """What the written examples hold: counts by split, label source, trust and intent."""
    return {
        "contexts_filled": reuse.filled,
        "contexts_reused": reuse.reused,
        "row_count": len(examples),
        "n_intents": int(examples["intent"].nunique()),
        "splits": dg.MetadataValue.json(count_mapping(examples["split"].value_counts())),
        "label_sources": dg.MetadataValue.json(
            count_mapping(examples["label_source"].value_counts())
        ),
        "label_trust": dg.MetadataValue.json(count_mapping(examples["label_trust"].value_counts())),
        "label_histogram": dg.MetadataValue.md(
            markdown_counts(count_mapping(examples["intent"].value_counts()), "intent")
        ),
    }


class FeatureConfig(dg.Config):
    """Feature blocks to compute (spaCy is the slow one); unset: the FEATURES_ environment."""

    use_spacy: bool | None = None
    spacy_model: str | None = None

    def settings(self) -> FeatureSettings:
        """FeatureSettings from the environment, with what this run's config sets on top.

        A config default would override FEATURES_USE_SPACY / FEATURES_SPACY_MODEL, so unset
        fields defer to them.
        """
        chosen = {key: value for key, value in self.model_dump().items() if value is not None}
        return FeatureSettings(**chosen)


@dg.asset(group_name=GROUP, kinds={"pandas", "spacy", "parquet"})
def message_features(
    context: dg.AssetExecutionContext, config: FeatureConfig, training_examples: pd.DataFrame
) -> dg.MaterializeResult:
    """Hand-crafted features of every example (the monitoring reference and analysis table)."""
    settings = config.settings()
    context.log.info(
        "extracting features of %d messages (spaCy %s)",
        len(training_examples),
        settings.spacy_model if settings.use_spacy else "off",
    )
    extractor = FeatureExtractor(settings)
    started = time.perf_counter()
    features = extractor.extract(
        training_examples["text"].tolist(),
        training_examples["context"].tolist(),
        pd.to_datetime(training_examples["ts"], utc=True).tolist(),
    )
    seconds = time.perf_counter() - started
    table = pd.concat(
        [training_examples[["message_id", "intent", "split"]].reset_index(drop=True), features],
        axis=1,
    )
    means = {str(name): float(mean) for name, mean in features.mean().round(3).items()}
    return dg.MaterializeResult(
        value=table,
        metadata={
            "row_count": len(table),
            "messages_per_second": round(len(table) / max(seconds, 1e-9), 1),
            "feature_means": dg.MetadataValue.json(means),
        },
    )

"""The drift demo's steps: train, replay, monitor, label, shadow, damage, and what each showed.

`pipelines/drift_demo.py` builds the sandbox and tells the story in order; each step here does
its work and prints its lines. MLflow, Dagster and the monitoring job are imported where a step
uses them: the demo refuses a bad setting before loading any of them.
"""

from __future__ import annotations

import json
import os
import random
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from monitoring.settings import MonitoringSettings
from pipelines.demo_clusters import (
    damage_labels,
    describe,
    label_messages,
    name_clusters,
    queued_clusters,
    unlabelled,
)
from pipelines.demo_shadow import print_decisions, prove_on_live_traffic
from pipelines.settings import PipelineSettings

if TYPE_CHECKING:
    from collections.abc import Sequence

    from conversations.intent_queue import QueuedCluster
    from monitoring.job import MonitoringResult
    from monitoring.metrics import Verdict
    from pipelines.run_summary import AssetMetadata

HELD_OUT = ("apple_pay_or_google_pay", "lost_or_stolen_phone", "terminate_account", "age_limit")
TRAIN_ASSETS = (
    "conversation_log",  # a run without a partition range reads every changed day
    "raw_conversations",
    "conversations",
    "quarantined_messages",
    "training_examples",
    "intent_model",
    "model_promotion",
)
# One candidate at its declared configuration (no hyper-parameter search): the same recipe
# for every version, so the retrained model differs from the champion by its data alone.
FAST = {"intent_model": {"config": {"candidates": ["tfidf_logreg"], "search_trials": 1}}}


@dataclass(frozen=True)
class DemoSettings:
    """The sandbox's settings, read once from the environment the demo sets up."""

    pipeline: PipelineSettings
    monitoring: MonitoringSettings


def say(message: str) -> None:
    """A step of the story, on stdout."""
    print(f"\n==> {message}", flush=True)


def train(label: str, settings: DemoSettings) -> dict[str, AssetMetadata]:
    """Materialise the training assets (fast search space) and return their metadata.

    Each step asks for a retrain, as the drift sensor's request would: the retrain rule's
    thresholds (models/retraining.py) are not what the demo shows.
    """
    import dagster as dg

    from pipelines.cli import materialization_metadata
    from pipelines.definitions import build_definitions
    from pipelines.retraining import RETRAIN_TAG

    started = time.perf_counter()
    defs = build_definitions(settings.pipeline, settings.monitoring)
    job = defs.resolve_implicit_global_asset_job_def()
    with dg.DagsterInstance.get() as instance:
        result = job.execute_in_process(
            instance=instance,
            asset_selection=[dg.AssetKey(name) for name in TRAIN_ASSETS],
            run_config={
                "ops": FAST,
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            },
            # Whatever the share of new labels, as a drift-requested run does.
            tags={RETRAIN_TAG: f"drift demo: {label}"},
        )
    metadata = materialization_metadata(result)
    model, promotion = metadata["intent_model"], metadata["model_promotion"]
    print(
        f"    {label}: version {model['version']} test_accuracy {model['test_accuracy']:.4f}, "
        f"gate passed={promotion.get('passed')}, champion v{promotion.get('champion')} "
        f"({time.perf_counter() - started:.0f} s)"
    )
    return metadata


def noisy(text: str, rng: random.Random) -> str:
    """A sloppy paraphrase: lower case, no punctuation, a filler phrase."""
    filler = rng.choice(["hey so ", "quick question ", "um ", "hello, "])
    return filler + text.lower().rstrip("?.!")


def replay_day(store_url: str, test: pd.DataFrame, end: datetime) -> pd.DataFrame:
    """A day of traffic: known intents, the held-out ones, and noisy paraphrases."""
    from models.registry import IntentRegistry, RegistryConfig
    from monitoring.replay import replay_traffic

    rng = random.Random(0)
    known = test[~test["category"].isin(HELD_OUT)].sample(900, random_state=0)
    held = test[test["category"].isin(HELD_OUT)]
    noise = test[~test["category"].isin(HELD_OUT)].sample(150, random_state=1)
    traffic = pd.concat(
        [known, held, noise.assign(text=[noisy(t, rng) for t in noise["text"]])]
    ).sample(frac=1, random_state=2)
    uri = os.environ["MLFLOW_TRACKING_URI"]
    registry = IntentRegistry(RegistryConfig(uri, uri))
    champion = registry.version_by_alias("champion")
    if champion is None:
        raise RuntimeError("no champion to replay the day's traffic against")
    inference = registry.load_inference(str(champion.version))
    texts = traffic["text"].tolist()
    predictions = [p.to_document(inference.ref) for p in inference.predict(texts, None, top_k=1)]
    handed_off = [p["fallback"] for p in predictions]
    ids = replay_traffic(
        store_url, texts, predictions, end - timedelta(hours=23), end, handed_off=handed_off
    )
    return traffic.assign(message_id=ids, predicted=[p["intent"] for p in predictions])


def monitor(end: datetime, settings: MonitoringSettings) -> MonitoringResult:
    """One monitoring run over the day before `end`."""
    from monitoring.job import run_monitoring

    return run_monitoring(settings.model_copy(update={"window_end": end}))


def show_drift(drift: MonitoringResult, held: pd.DataFrame) -> None:
    """The monitoring verdict, its reasons, and how often the held-out intents fell back."""
    fallback = drift.summary.predictions.fallback_rate
    print(f"    verdict: {drift.verdict}")
    for reason in drift.summary.reasons:
        print(f"    - {reason}")
    print(
        f"    fallback on held-out intents: {(held['predicted'] == 'nlu_fallback').mean():.0%} "
        f"(overall {fallback.current:.1%} vs {fallback.reference:.1%} on test data)"
    )


def show_new_intents(store_url: str, truth: dict[str, str]) -> list[QueuedCluster]:
    """The clusters of fallback messages queued for the agents, each with its true intents."""
    clusters = queued_clusters(store_url)
    print(f"    new intents found: {len(clusters)} clusters of fallback messages")
    for line in describe(clusters, truth):
        print(f"    - {line}")
    return clusters


def label_new_intents(
    store_url: str,
    clusters: list[QueuedCluster],
    truth: dict[str, str],
    held: pd.DataFrame,
    at: datetime,
) -> None:
    """Agents name the clusters, then label the held-out intents' messages left over."""
    named = name_clusters(store_url, clusters, truth, at)
    rest = unlabelled(held, named)
    count = label_messages(store_url, rest, rest["category"].tolist(), at)
    print(f"    {len(named)} messages labelled through the queue, {count} one by one")


def retrain_held(settings: DemoSettings) -> dict[str, AssetMetadata]:
    """Retrain on the new labels; the challenger must be held for live traffic, or the demo
    stops here."""
    retrained = train("retrained model", settings)
    if retrained["model_promotion"].get("held") is not True:
        print_decisions()
        raise SystemExit("the retrained model was not held for live traffic: see above")
    print("    every offline check passed; held until live traffic proves it")
    return retrained


def shadow_and_rejudge(settings: DemoSettings, root: Path, texts: Sequence[str]) -> AssetMetadata:
    """Serve `texts` with the challenger in shadow; returns the re-judging promotion's metadata."""
    shadow = prove_on_live_traffic(settings.pipeline, settings.monitoring, root, texts)
    promoted = shadow.promotion
    print(f"    before: {shadow.before}")
    print(f"    {shadow.sent} live messages answered over HTTP, each one shadowed")
    print(f"    sensor: {shadow.trigger}")
    print(f"    re-judged: passed={promoted.get('passed')}, champion v{promoted.get('champion')}")
    return promoted


def damage_and_retrain(
    store_url: str, banking77: Path, at: datetime, settings: DemoSettings
) -> dict[str, AssetMetadata]:
    """Store a careless labelling batch (half the training labels wrong) and retrain."""
    damaged = damage_labels(store_url, banking77, at)
    print(f"    {damaged} wrong agent labels stored")
    return train("damaged model", settings)


def ended_as_expected(
    verdict: Verdict,
    retrained: dict[str, AssetMetadata],
    promoted: AssetMetadata,
    refused: dict[str, AssetMetadata],
) -> bool:
    """Drift seen, the retrained model held then promoted on shadow pairs, the damaged refused."""
    return (
        verdict == "drift"
        and retrained["model_promotion"].get("held") is True
        and promoted.get("passed") is True
        and refused["model_promotion"].get("passed") is False
    )


def show_outcome(drift: MonitoringResult, ok: bool) -> None:
    """The gate's decisions, where the reports are, and the summary line; exits if not `ok`."""
    say("decisions")
    print_decisions()
    say("reports")
    print(f"    drift report: {drift.run_dir / 'index.html'}")
    print(f"    all reports:  {drift.index_path}")
    print("    gate history: make status DEMO=1")
    summary = {
        "drift_verdict": drift.verdict.value,
        "held_then_promoted_on_shadow_pairs": ok,
    }
    print(json.dumps(summary))
    if not ok:
        raise SystemExit("the demo did not end as expected: see the decisions above")

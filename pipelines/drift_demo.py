"""`make drift-demo`: the whole loop on Banking77, in a sandbox (.demo/).

On the 2-core machine under other jobs' load (2026-11-30) it took 33 min, three trainings of
9-10 min each; the shadow step (serve, 240 live messages, re-judgement) 100 s of it.

1. Train on Banking77 with a few intents held out → champion v1.
2. Replay a day of traffic that includes the held-out intents and some noisy paraphrases.
3. Monitor: verdict `drift`, the held-out intents showing up as fallback growth and as
   clusters of new intents in the agents' "label these" queue.
4. Agents name those clusters, and label the held-out intents' other messages.
5. Retrain → challenger v2 passes every offline check but is HELD: it has no shadow pairs yet
   (GATE_SHADOW_MIN_SAMPLES=200 in the sandbox).
6. A real `bentoml serve` shadows v2 on live HTTP traffic; once its pairs reach the minimum,
   `held_challenger_sensor` has it judged again on them, and it becomes champion.
7. A careless labelling batch damages half of the training labels → v3 is refused by the gate.

Everything lives under .demo/ (registry, store, lake, Dagster home, reports), so the real
champion is never touched; `make status DEMO=1` shows the demo's gate history afterwards.
"""

from __future__ import annotations

import json
import os
import random
import shutil
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from models.settings_errors import SettingsProblem, load_settings
from models.splits import TEST
from monitoring.settings import MonitoringSettings
from pipelines.demo_clusters import (
    damage_labels,
    describe,
    label_messages,
    name_clusters,
    queued_clusters,
    unlabelled,
)
from pipelines.demo_shadow import (
    SHADOW_MIN_SAMPLES,
    live_traffic,
    print_decisions,
    prove_on_live_traffic,
)
from pipelines.sandbox import sandbox_environment
from pipelines.settings import PipelineSettings

if TYPE_CHECKING:  # imported where used: the demo starts without loading MLflow or Dagster
    from monitoring.job import MonitoringResult
    from pipelines.run_summary import AssetMetadata

REPO_ROOT = Path(__file__).resolve().parents[1]
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


def demo_environment(root: Path) -> dict[str, str]:
    """The environment that points every component at the sandbox."""
    shadow = {"GATE_SHADOW_MIN_SAMPLES": str(SHADOW_MIN_SAMPLES)}  # a challenger is held first
    return sandbox_environment(root, root / "banking77") | shadow


def prepare_sandbox(root: Path, banking77: Path) -> pd.DataFrame:
    """A fresh sandbox whose Banking77 copy lacks the held-out intents; returns the full test."""
    if root.exists():
        shutil.rmtree(root)
    (root / "banking77").mkdir(parents=True)
    (root / "incoming").mkdir()
    (root / "dagster_home").mkdir()
    shutil.copy(REPO_ROOT / "dagster.yaml", root / "dagster_home" / "dagster.yaml")
    for name in ("train.csv", "test.csv"):
        frame = pd.read_csv(banking77 / name)
        frame[~frame["category"].isin(HELD_OUT)].to_csv(root / "banking77" / name, index=False)
    return pd.read_csv(banking77 / "test.csv")


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


def main() -> int:
    """Run the story and print where everything is; a bad setting is one line (exit code 2)."""
    root = Path(os.environ.get("DEMO_DIR", REPO_ROOT / ".demo")).resolve()
    banking77 = Path(
        os.environ.get("BANKING77_SOURCE", REPO_ROOT.parent / "shared" / "data" / "banking77")
    )
    os.environ.update(demo_environment(root))
    # The sandbox's Banking77 copy exists only once the sandbox is rebuilt: until then the
    # settings are checked against the folder it is copied from.
    os.environ["BANKING77_DIR"] = str(banking77)
    try:
        # Read before the sandbox is wiped and rebuilt: a bad value changes nothing.
        checked = DemoSettings(load_settings(PipelineSettings), load_settings(MonitoringSettings))
    except SettingsProblem as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    say(f"sandbox {root}: Banking77 without {', '.join(HELD_OUT)}")
    test = prepare_sandbox(root, banking77)
    os.environ["BANKING77_DIR"] = str(root / "banking77")
    sandboxed = checked.pipeline.model_copy(update={"banking77_dir": root / "banking77"})
    settings = DemoSettings(sandboxed, checked.monitoring)
    store_url = os.environ["CONVERSATION_STORE_URL"]
    assert TEST == "test"

    say("1/7 train the first champion")
    train("first model", settings)

    now = datetime.now(UTC)
    say("2/7 replay a day of traffic, held-out intents and noisy paraphrases included")
    traffic = replay_day(store_url, test, now)
    held = traffic[traffic["category"].isin(HELD_OUT)]
    print(f"    {len(traffic)} messages, {len(held)} of them about the held-out intents")

    say("3/7 monitor the day")
    drift = monitor(now + timedelta(minutes=1), settings.monitoring)
    fallback = drift.summary.predictions.fallback_rate
    print(f"    verdict: {drift.verdict}")
    for reason in drift.summary.reasons:
        print(f"    - {reason}")
    print(
        f"    fallback on held-out intents: {(held['predicted'] == 'nlu_fallback').mean():.0%} "
        f"(overall {fallback.current:.1%} vs {fallback.reference:.1%} on test data)"
    )

    clusters = queued_clusters(store_url)
    truth = dict(zip(traffic["message_id"], traffic["category"], strict=True))
    print(f"    new intents found: {len(clusters)} clusters of fallback messages")
    for line in describe(clusters, truth):
        print(f"    - {line}")

    say("4/7 agents name the clusters, then label the held-out intents' other messages")
    named = name_clusters(store_url, clusters, truth, now + timedelta(minutes=2))
    rest = unlabelled(held, named)
    count = label_messages(store_url, rest, rest["category"].tolist(), now + timedelta(minutes=2))
    print(f"    {len(named)} messages labelled through the queue, {count} one by one")

    say("5/7 retrain: the challenger must earn its place, first offline")
    retrained = train("retrained model", settings)
    if retrained["model_promotion"].get("held") is not True:
        print_decisions()
        raise SystemExit("the retrained model was not held for live traffic: see above")
    print("    every offline check passed; held until live traffic proves it")

    say("6/7 serve: the champion answers live traffic, the held challenger scores it in shadow")
    texts = live_traffic(test, traffic, banking77, HELD_OUT)
    shadow = prove_on_live_traffic(settings.pipeline, settings.monitoring, root, texts)
    promoted = shadow.promotion
    print(f"    before: {shadow.before}")
    print(f"    {shadow.sent} live messages answered over HTTP, each one shadowed")
    print(f"    sensor: {shadow.trigger}")
    print(f"    re-judged: passed={promoted.get('passed')}, champion v{promoted.get('champion')}")

    say("7/7 a careless labelling batch damages half of the training labels; retrain")
    damaged = damage_labels(store_url, banking77, now + timedelta(minutes=3))
    print(f"    {damaged} wrong agent labels stored")
    refused = train("damaged model", settings)

    say("decisions")
    print_decisions()
    say("reports")
    print(f"    drift report: {drift.run_dir / 'index.html'}")
    print(f"    all reports:  {drift.index_path}")
    print("    gate history: make status DEMO=1")
    ok = (
        drift.verdict == "drift"
        and retrained["model_promotion"].get("held") is True
        and promoted.get("passed") is True
        and refused["model_promotion"].get("passed") is False
    )
    summary = {
        "drift_verdict": drift.verdict.value,
        "held_then_promoted_on_shadow_pairs": ok,
    }
    print(json.dumps(summary))
    if not ok:
        raise SystemExit("the demo did not end as expected: see the decisions above")
    return 0


if __name__ == "__main__":
    sys.exit(main())

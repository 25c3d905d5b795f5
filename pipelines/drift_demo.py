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

import os
import shutil
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd

from models.settings_errors import SettingsProblem, load_settings
from models.splits import TEST
from monitoring.settings import MonitoringSettings
from pipelines.demo_shadow import SHADOW_MIN_SAMPLES, live_traffic
from pipelines.demo_story import (
    HELD_OUT,
    DemoSettings,
    damage_and_retrain,
    ended_as_expected,
    label_new_intents,
    monitor,
    replay_day,
    retrain_held,
    say,
    shadow_and_rejudge,
    show_drift,
    show_new_intents,
    show_outcome,
    train,
)
from pipelines.sandbox import sandbox_environment
from pipelines.settings import PipelineSettings

REPO_ROOT = Path(__file__).resolve().parents[1]


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


def checked_settings(root: Path, banking77: Path) -> DemoSettings:
    """Point the environment at the sandbox and read its settings; raises SettingsProblem.

    Read before the sandbox is wiped and rebuilt: a bad value changes nothing.
    """
    os.environ.update(demo_environment(root))
    # The sandbox's Banking77 copy exists only once the sandbox is rebuilt: until then the
    # settings are checked against the folder it is copied from.
    os.environ["BANKING77_DIR"] = str(banking77)
    return DemoSettings(load_settings(PipelineSettings), load_settings(MonitoringSettings))


def sandboxed_settings(root: Path, checked: DemoSettings) -> DemoSettings:
    """The checked settings, their Banking77 folder now the sandbox's copy."""
    os.environ["BANKING77_DIR"] = str(root / "banking77")
    sandboxed = checked.pipeline.model_copy(update={"banking77_dir": root / "banking77"})
    return DemoSettings(sandboxed, checked.monitoring)


def tell_story(root: Path, banking77: Path, test: pd.DataFrame, settings: DemoSettings) -> None:
    """Steps 1 to 7 in the sandbox, then the decisions; exits when it did not end as expected."""
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
    show_drift(drift, held)
    truth = dict(zip(traffic["message_id"], traffic["category"], strict=True))
    clusters = show_new_intents(store_url, truth)

    say("4/7 agents name the clusters, then label the held-out intents' other messages")
    label_new_intents(store_url, clusters, truth, held, now + timedelta(minutes=2))

    say("5/7 retrain: the challenger must earn its place, first offline")
    retrained = retrain_held(settings)

    say("6/7 serve: the champion answers live traffic, the held challenger scores it in shadow")
    texts = live_traffic(test, traffic, banking77, HELD_OUT)
    promoted = shadow_and_rejudge(settings, root, texts)

    say("7/7 a careless labelling batch damages half of the training labels; retrain")
    refused = damage_and_retrain(store_url, banking77, now + timedelta(minutes=3), settings)

    show_outcome(drift, ended_as_expected(drift.verdict, retrained, promoted, refused))


def main() -> int:
    """Run the story and print where everything is; a bad setting is one line (exit code 2)."""
    root = Path(os.environ.get("DEMO_DIR", REPO_ROOT / ".demo")).resolve()
    banking77 = Path(
        os.environ.get("BANKING77_SOURCE", REPO_ROOT.parent / "shared" / "data" / "banking77")
    )
    try:
        checked = checked_settings(root, banking77)
    except SettingsProblem as problem:
        print(f"error: {problem}", file=sys.stderr)
        return 2
    say(f"sandbox {root}: Banking77 without {', '.join(HELD_OUT)}")
    test = prepare_sandbox(root, banking77)
    tell_story(root, banking77, test, sandboxed_settings(root, checked))
    return 0


if __name__ == "__main__":
    sys.exit(main())

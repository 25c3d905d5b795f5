"""The drift demo's shadow step: a held challenger proven on live traffic, then judged again.

With GATE_SHADOW_MIN_SAMPLES set, `model_promotion` holds a retrained challenger whose only
failing check is `shadow_sample`: it stays `challenger` and the champion keeps serving. This
step starts a real `bentoml serve` of the sandbox with every message shadowed
(SERVING_SHADOW_SHARE=1), sends it live traffic over HTTP, and ticks `held_challenger_sensor`
(pipelines/shadow_sensor.py) as the Dagster daemon would: it skips while the prediction log has
written too few pairs, then requests `shadow_rejudge_job`, whose `model_promotion` run judges
the challenger on the pairs serving recorded (models/shadow_checks.py). Nothing is faked: the
pairs are the service's own rows, the re-judgement the daemon's own run request.
"""

from __future__ import annotations

import logging
import os
import secrets
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pandas as pd

from serving.local_serve import free_loopback_port, serving_on_loopback

if TYPE_CHECKING:
    import dagster as dg

    from models.registry_records import GateRecord
    from monitoring.settings import MonitoringSettings
    from pipelines.run_summary import AssetMetadata
    from pipelines.settings import PipelineSettings

logger = logging.getLogger(__name__)
SHADOW_MIN_SAMPLES = 200  # GATE_SHADOW_MIN_SAMPLES in the demo: pairs a challenger must earn
# Serving writes pairs within a second or two of the answers; past this the step gives up.
PAIRS_WAIT_S = 300.0


@dataclass(frozen=True)
class ShadowStep:
    """What the step saw: the sensor's word before and after the traffic, and the verdict."""

    before: str  # the sensor's skip message while the challenger waits for pairs
    sent: int  # live messages answered over HTTP (every one shadowed)
    trigger: str  # why the sensor asked for the re-judgement (counts included)
    promotion: AssetMetadata  # the re-judging `model_promotion`'s metadata


@contextmanager
def shadowing_server(root: Path) -> Iterator[str]:
    """`bentoml serve` of the sandbox's champion, shadowing every message; yields its URL.

    Stopped as a whole tree at the end (BentoML workers run in sessions of their own).
    """
    env = os.environ | {
        "BENTOML_HOME": str(root / "bentoml"),
        "SERVING_SHADOW_SHARE": "1",
        "SERVING_RECORD_FLUSH_INTERVAL_S": "0.2",
        "SERVING_POLL_INTERVAL_S": "0",
    }
    env.setdefault("CHAT_JWT_SECRET", secrets.token_urlsafe(48))  # the chat tier needs one
    with serving_on_loopback(env, root / "serve.log", free_loopback_port()) as url:
        yield url


def send_live(url: str, texts: Sequence[str]) -> int:
    """Answer each text with /predict, as the service's HTTP clients do; the number answered."""
    with httpx.Client(base_url=url, timeout=60) as client:
        for text in texts:
            client.post("/predict", json={"text": text}).raise_for_status()
    return len(texts)


def live_traffic(
    test: pd.DataFrame, replayed: pd.DataFrame, banking77: Path, held_out: Sequence[str]
) -> list[str]:
    """Live messages: test messages the replayed day did not use, and a few of the held-out
    intents neither model was trained or labelled on (from Banking77's train.csv).

    Few of those: the challenger answers them where the champion falls back, and agreement with
    the champion (GATE_SHADOW_MIN_AGREEMENT, 0.8) counts that as disagreeing.
    """
    known = test[~test["category"].isin(held_out) & ~test["text"].isin(replayed["text"])]
    full = pd.read_csv(banking77 / "train.csv")
    held = full[full["category"].isin(held_out)].groupby("category").sample(4, random_state=5)
    live = pd.concat([known.sample(SHADOW_MIN_SAMPLES + 24, random_state=6), held])
    return live.sample(frac=1, random_state=7)["text"].tolist()


class HeldSensor:
    """`held_challenger_sensor` ticked on the sandbox's Dagster instance, carrying its cursor."""

    def __init__(self, instance: dg.DagsterInstance, resources: dict[str, object]) -> None:
        self.instance = instance
        self.resources = resources
        self.cursor: str | None = None

    def tick(self) -> dg.SensorExecutionData:
        """One evaluation, as the daemon's."""
        import dagster as dg

        from pipelines.shadow_sensor import held_challenger_sensor

        with dg.build_sensor_context(
            instance=self.instance, cursor=self.cursor, resources=self.resources
        ) as context:
            result = held_challenger_sensor.evaluate_tick(context)
        self.cursor = result.cursor or self.cursor
        return result

    def wait_for_request(self, wait_s: float = PAIRS_WAIT_S) -> dg.RunRequest:
        """Tick until the sensor requests the re-judgement (the pairs reached the minimum)."""
        deadline = time.monotonic() + wait_s
        while True:
            result = self.tick()
            if result.run_requests:
                return result.run_requests[0]
            if time.monotonic() > deadline:
                raise RuntimeError(f"no re-judgement requested: {result.skip_message}")
            time.sleep(0.5)


def prove_on_live_traffic(
    pipeline: PipelineSettings,
    monitoring: MonitoringSettings,
    root: Path,
    texts: Sequence[str],
    promotion_config: Mapping[str, object] | None = None,
) -> ShadowStep:
    """Serve, shadow `texts`, and let the sensor have the held challenger judged again.

    `promotion_config`: the re-judging run's `model_promotion` config (default: the gate's own).
    """
    import dagster as dg

    from pipelines.definitions import build_definitions, build_resources
    from pipelines.run_summary import materialization_metadata

    defs = build_definitions(pipeline, monitoring)
    with dg.DagsterInstance.get() as instance:
        sensor = HeldSensor(instance, build_resources(pipeline, monitoring))
        before = sensor.tick()
        if before.run_requests:  # already enough pairs: nothing was held for want of them
            raise RuntimeError("the challenger was not waiting for shadow pairs")
        with shadowing_server(root) as url:
            sent = send_live(url, texts)
            request = sensor.wait_for_request()
        job = defs.resolve_job_def(request.job_name or "shadow_rejudge_job")
        result = job.execute_in_process(
            instance=instance,
            tags=request.tags,
            run_config={
                "ops": {"model_promotion": {"config": dict(promotion_config or {})}},
                "loggers": {"console": {"config": {"log_level": "WARNING"}}},
            },
        )
    return ShadowStep(
        before.skip_message or "",
        sent,
        request.tags.get("trigger", ""),
        materialization_metadata(result)["model_promotion"],
    )


def gate_history() -> list[GateRecord]:
    """The demo registry's gate decisions, newest first."""
    from models.registry import IntentRegistry, RegistryConfig

    uri = os.environ["MLFLOW_TRACKING_URI"]
    return IntentRegistry(RegistryConfig(uri, uri)).gate_history()


def print_decisions() -> None:
    """Each gate decision: promoted, held or refused, with the failing checks, and for a
    promotion what live traffic showed (its shadow checks)."""
    from models.registry_records import PromotionState

    for entry in gate_history():
        held = entry.promotion is PromotionState.HELD
        verdict = "PROMOTED" if entry.passed else "HELD" if held else "REFUSED"
        print(f"    v{entry.version} {verdict} at {entry.decided_at}")
        for check in entry.checks:
            if not check.passed:
                print(f"      ✗ {check.name}: {check.reason}")
            elif entry.passed and check.name.startswith("shadow_"):
                print(f"      ✓ {check.name}: {check.reason}")

"""Shadow scoring on a real `bentoml serve`: the registry's challenger answers live traffic too.

The challenger is trained on the champion's data with its labels shuffled: it disagrees with the
champion on most messages, and the promotion gate, reading the shadow pairs from the store,
refuses it with the shadow check named.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import dagster as dg
import httpx
import numpy as np
import pandas as pd
import pytest
import sqlalchemy as sa

from conversations import store_engine, tables
from models.registry import CHALLENGER, IntentRegistry, RegistryConfig
from models.splits import assign_splits
from monitoring.job import run_monitoring
from monitoring.settings import MonitoringSettings
from pipelines.assets.promotion import PromotionConfig, model_promotion
from pipelines.resources import AlertNotifier, ConversationSources, MlflowRegistry
from tests.conftest import register_version
from tests.serving.conftest import REPO_ROOT, ServiceProcess, service_env

pytestmark = pytest.mark.slow
SINGLE, BATCH = 40, 40  # /predict requests and /batch_predict items; every one is shadowed


@dataclass
class Shadowed:
    """A registry with a champion and a challenger, a service shadowing it, its store."""

    registry: IntentRegistry
    config: RegistryConfig
    champion: str
    challenger: str
    service: ServiceProcess
    store_url: str
    texts: list[str]


@pytest.fixture(scope="module")
def shadowed(tmp_path_factory, small_slice: pd.DataFrame) -> Iterator[Shadowed]:
    root = tmp_path_factory.mktemp("shadow")
    config = RegistryConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    registry = IntentRegistry(config)
    champion = register_version(small_slice, registry, root / "artifacts")
    registry.promote(champion)
    labels = np.random.default_rng(0).permutation(small_slice["category"].to_numpy())
    challenger = register_version(small_slice.assign(category=labels), registry, root / "art2")
    registry.set_alias(CHALLENGER, challenger)
    env = service_env(
        {"root": root, "config": config},
        "shadow-store.db",
        SERVING_SHADOW_SHARE="1",
        SERVING_RECORD_FLUSH_INTERVAL_S="0.2",
    )
    service = ServiceProcess(env)
    service.start()
    try:
        texts = small_slice["text"].sample(SINGLE + BATCH, random_state=1).tolist()
        yield Shadowed(
            registry, config, champion, challenger, service, env["SERVING_STORE_URL"], texts
        )
    finally:
        service.stop()


def metric(service: ServiceProcess, name: str) -> float:
    text = httpx.get(f"{service.url}/metrics", timeout=30).text
    found = re.search(rf"^{name}(?:{{[^}}]*}})? ([0-9.e+]+)$", text, re.MULTILINE)
    return float(found.group(1)) if found else 0.0


def rows(store_url: str) -> list[dict]:
    engine = store_engine.create_engine(store_url)
    predictions = tables.predictions
    with engine.connect() as connection:
        found = connection.execute(sa.select(predictions).order_by(predictions.c.prediction_id))
        result = [dict(row) for row in found.mappings()]
    engine.dispose()
    return result


def wait_for(condition, what: str, timeout_s: float = 180.0) -> None:
    """Poll until `condition()` holds (a bound on waiting, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.2)


@pytest.fixture(scope="module")
def traffic(shadowed: Shadowed) -> list[dict]:
    """Live requests answered, shadowed, and both answers in the store."""
    url = shadowed.service.url
    for text in shadowed.texts[:SINGLE]:
        answer = httpx.post(f"{url}/predict", json={"text": text, "user_id": "u-1"}, timeout=60)
        assert answer.status_code == 200, answer.text
    items = [{"text": text} for text in shadowed.texts[SINGLE:]]
    answer = httpx.post(f"{url}/batch_predict", json={"items": items}, timeout=60)
    assert answer.status_code == 200, answer.text
    total = SINGLE + BATCH
    wait_for(lambda: metric(shadowed.service, "intent_shadow_scored_total") >= total, "scoring")
    wait_for(
        lambda: sum(row["role"] == "shadow" for row in rows(shadowed.store_url)) >= total,
        "the shadow rows to be written",
    )
    return rows(shadowed.store_url)


def test_version_names_the_challenger_being_shadowed(shadowed: Shadowed) -> None:
    body = httpx.get(f"{shadowed.service.url}/version", timeout=10).json()
    assert body["version"] == shadowed.champion
    assert body["challenger"]["version"] == shadowed.challenger
    assert body["challenger"]["share"] == 1.0


def test_live_requests_produce_paired_records_with_both_versions(
    shadowed: Shadowed, traffic: list[dict]
) -> None:
    served = [row for row in traffic if row["role"] == "served"]
    shadows = {row["pair_id"]: row for row in traffic if row["role"] == "shadow"}
    assert len(served) == len(shadows) == SINGLE + BATCH
    assert {row["channel"] for row in served} == {"http"}
    assert {row["channel"] for row in shadows.values()} == {"shadow"}  # not counted as traffic
    assert {row["model_version"] for row in served} == {shadowed.champion}
    assert {row["model_version"] for row in shadows.values()} == {shadowed.challenger}
    for row in served:
        twin = shadows[row["pair_id"]]
        assert twin["text"] == row["text"] and twin["message_id"] != row["message_id"]
    assert {row["user_id"] for row in served[:SINGLE]} == {"u-1"}
    assert sorted(row["text"] for row in served) == sorted(shadowed.texts)
    assert metric(shadowed.service, "intent_shadow_dropped_total") == 0


def test_make_status_shows_the_shadow_comparison(
    shadowed: Shadowed, traffic: list[dict], tmp_path
) -> None:
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_REGISTRY_URI"} | {
        "MLFLOW_TRACKING_URI": shadowed.config.tracking_uri,
        "CONVERSATION_STORE_URL": shadowed.store_url,
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
    }
    done = subprocess.run(
        [sys.executable, "-m", "pipelines.cli", "status"],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    shadow = json.loads(done.stdout)["shadow"]
    assert shadow["challenger_version"] == shadowed.challenger
    assert shadow["served_version"] == shadowed.champion
    assert shadow["samples"] == SINGLE + BATCH
    assert shadow["agreement"] < 0.5
    assert shadow["served_mean_confidence"] > shadow["shadow_mean_confidence"]
    refused = {check["name"] for check in shadow["checks"] if not check["passed"]}
    assert "shadow_agreement" in refused


def test_a_challenger_that_disagrees_is_refused_with_the_shadow_check_named(
    shadowed: Shadowed, traffic: list[dict], small_slice: pd.DataFrame
) -> None:
    examples = small_slice.rename(columns={"category": "intent"}).assign(context="{}")
    examples["split"] = assign_splits(examples["text"].tolist(), examples["intent"].tolist())
    examples["message_id"] = [f"m-{n}" for n in range(len(examples))]
    notifier = AlertNotifier(
        notifiers=["log"], smtp_host="", smtp_port=25, smtp_from="", smtp_to=[]
    )
    registry = MlflowRegistry(
        tracking_uri=shadowed.config.tracking_uri, model_name=shadowed.registry.name
    )
    with dg.build_asset_context() as context:
        result = model_promotion(
            context,
            config=PromotionConfig(),
            mlflow_registry=registry,
            sources=ConversationSources(store_url=shadowed.store_url),
            notifier=notifier,
            intent_model={"version": shadowed.challenger},
            training_examples=examples,
        )
    decision = result.value
    assert decision["passed"] is False
    checks = {check["name"]: check for check in decision["checks"]}
    agreement = checks["shadow_agreement"]
    assert agreement["passed"] is False, agreement
    assert f"of {SINGLE + BATCH} live messages" in agreement["reason"]
    assert checks["shadow_sample"]["passed"] is True
    champion = shadowed.registry.version_by_alias("champion")
    assert champion is not None and str(champion.version) == shadowed.champion


def test_the_report_shows_the_candidate_on_live_traffic(
    shadowed: Shadowed, traffic: list[dict], tmp_path
) -> None:
    settings = MonitoringSettings(
        store_url=shadowed.store_url,
        mlflow_tracking_uri=shadowed.config.tracking_uri,
        reports_dir=tmp_path / "reports",
        lake_dir=tmp_path / "no-lake",
    )
    result = run_monitoring(settings, log_to_mlflow=False)
    page = (result.run_dir / "index.html").read_text(encoding="utf-8")
    section = page[page.index("<section id='shadow'>") :]
    section = section[: section.index("</section>")]
    assert f"Candidate version {shadowed.challenger} answered {SINGLE + BATCH}" in section
    assert "would <b>refuse</b> it" in section and "agrees with version" in section


def test_shadowing_follows_the_challenger_alias(shadowed: Shadowed, traffic: list[dict]) -> None:
    url, registry = shadowed.service.url, shadowed.registry

    def challenger() -> dict | None:
        return httpx.get(f"{url}/version", timeout=10).json()["challenger"]

    registry.client.delete_registered_model_alias(registry.name, CHALLENGER)
    wait_for(lambda: challenger() is None, "the worker to stop shadowing")
    before = len(rows(shadowed.store_url))
    answer = httpx.post(f"{url}/predict", json={"text": "my card is lost"}, timeout=60)
    assert answer.status_code == 200
    wait_for(lambda: len(rows(shadowed.store_url)) > before, "the served row")
    added = rows(shadowed.store_url)[before:]
    assert [(row["role"], row["pair_id"]) for row in added] == [("served", None)]

    registry.set_alias(CHALLENGER, shadowed.challenger)
    wait_for(lambda: (challenger() or {}).get("version") == shadowed.challenger, "shadowing")

"""Promote a new version while a client loops on /predict: no failure, one switch."""

from __future__ import annotations

import itertools
import threading
import time
from pathlib import Path

import httpx
import pytest

from tests.conftest import register_version
from tests.serving.conftest import ADMIN_KEY

pytestmark = pytest.mark.slow


def test_hot_swap_under_load_switches_version_exactly_once(
    service, serving_registry, banking77_train
):
    registry = serving_registry["registry"]
    before = str(registry.version_by_alias("champion").version)
    intents = sorted(banking77_train["category"].unique())[6:12]
    examples = (
        banking77_train[banking77_train["category"].isin(intents)].groupby("category").head(30)
    )
    new_version = register_version(examples, registry, serving_registry["root"] / "artifacts")

    versions: list[str] = []
    failures: list[str] = []
    stop = threading.Event()

    def client() -> None:
        with httpx.Client(base_url=service.url, timeout=30) as http:
            while not stop.is_set():
                response = http.post("/predict", json={"text": "I lost my card yesterday"})
                if response.status_code != 200:
                    failures.append(f"{response.status_code} {response.text}")
                else:
                    versions.append(response.json()["model"]["version"])

    thread = threading.Thread(target=client)
    thread.start()
    try:
        time.sleep(2)
        registry.promote(new_version)
        deadline = time.monotonic() + 90
        while time.monotonic() < deadline and (not versions or versions[-1] != new_version):
            time.sleep(0.5)
        time.sleep(2)
    finally:
        stop.set()
        thread.join(timeout=60)

    assert not failures
    assert versions[0] == before and versions[-1] == new_version
    switches = sum(1 for a, b in itertools.pairwise(versions) if a != b)
    assert switches == 1, f"{switches} switches over {len(versions)} responses"
    version = httpx.get(f"{service.url}/version", timeout=10).json()
    assert version["version"] == new_version


def test_reload_of_a_version_that_cannot_be_loaded_answers_503_and_keeps_serving(
    service, serving_registry, banking77_train
):
    registry = serving_registry["registry"]
    before = str(registry.version_by_alias("champion").version)
    intents = sorted(banking77_train["category"].unique())[12:18]
    examples = (
        banking77_train[banking77_train["category"].isin(intents)].groupby("category").head(30)
    )
    broken = register_version(examples, registry, serving_registry["root"] / "artifacts")
    location = registry.client.get_model_version_download_uri(registry.name, broken)
    next(Path(location.removeprefix("file://")).rglob("model.skops")).write_bytes(b"garbage")
    registry.set_alias("champion", broken)
    try:
        response = httpx.post(
            f"{service.url}/admin/reload", headers={"X-API-Key": ADMIN_KEY}, timeout=60
        )
        assert response.status_code == 503, response.text
        message = response.json()["error"]
        assert f"version {broken} of intent-classifier cannot be loaded" in message
        assert f"version {before} keeps serving" in message
        assert httpx.get(f"{service.url}/version", timeout=10).json()["version"] == before
        answer = httpx.post(f"{service.url}/predict", json={"text": "my card is lost"}, timeout=30)
        assert answer.status_code == 200 and answer.json()["model"]["version"] == before
    finally:
        registry.set_alias("champion", before)

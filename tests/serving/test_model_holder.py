"""Hot-swap rules of ModelHolder against a real MLflow registry, in-process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from models.registry import IntentRegistry, RegistryConfig
from serving.model_holder import ModelHolder, NoModelError
from tests.conftest import register_version


@pytest.fixture()
def registry(tmp_path) -> IntentRegistry:
    return IntentRegistry(RegistryConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))


def test_no_champion_fails_start_with_a_clear_message(registry, small_slice, tmp_path):
    register_version(small_slice, registry, tmp_path / "artifacts")
    with pytest.raises(NoModelError, match="no version with alias 'champion'"):
        ModelHolder(registry, "champion").refresh()


def test_failed_load_keeps_the_old_version_serving(registry, small_slice, tmp_path):
    first = register_version(small_slice, registry, tmp_path / "artifacts")
    registry.promote(first)
    holder = ModelHolder(registry, "champion")
    assert holder.refresh() is True and holder.current.version == first
    assert holder.refresh() is False  # nothing changed

    second = register_version(
        small_slice.sample(frac=1, random_state=1), registry, tmp_path / "artifacts"
    )
    location = registry.client.get_model_version_download_uri(registry.name, second)
    shutil.rmtree(Path(location.removeprefix("file://")))  # the new version's files are gone
    registry.promote(second)
    serving_before = holder.current
    assert holder.refresh() is False
    assert holder.current is serving_before and holder.current.version == first

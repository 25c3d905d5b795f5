"""Hot-swap rules of ModelHolder against a real MLflow registry, in-process."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from features import embeddings
from models.registry import TAG_FINGERPRINT, IntentRegistry, ModelLoadError, RegistryConfig
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
    with pytest.raises(ModelLoadError, match=rf"version {second} .*cannot be loaded"):
        holder.refresh()
    assert holder.current is serving_before and holder.current.version == first


def test_a_version_without_its_fallback_policy_is_never_served(registry, small_slice, tmp_path):
    first = register_version(small_slice, registry, tmp_path / "artifacts")
    registry.promote(first)
    holder = ModelHolder(registry, "champion")
    holder.refresh()
    # What the old two-step registration left when killed between the version and its tags.
    location = registry.client.get_model_version_download_uri(registry.name, first)
    bare = registry.client.create_model_version(
        registry.name, location, tags={TAG_FINGERPRINT: "fp"}
    )
    registry.set_alias("champion", bare.version)
    with pytest.raises(ModelLoadError, match=r"incomplete .*fallback_policy"):
        holder.refresh()
    assert holder.current.version == first


def test_loading_a_version_builds_the_sentence_encoder_before_it_serves(
    registry, small_slice, tmp_path, monkeypatch
):
    version = register_version(
        small_slice, registry, tmp_path / "artifacts", candidate="tfidf_minilm_linearsvc"
    )
    registry.promote(version)
    monkeypatch.setattr(embeddings, "_shared", {})  # as in a fresh worker process
    holder = ModelHolder(registry, "champion")
    assert holder.refresh() is True
    # The ONNX session exists before the first request, which therefore does not wait for it.
    assert embeddings.shared_encoder()._session is not None

"""Forced promotion and rollback against a real MLflow registry."""

from __future__ import annotations

from pathlib import Path

import pytest

from models.registry import (
    CHAMPION,
    TAG_FINGERPRINT,
    IntentRegistry,
    ModelLoadError,
    RegistryConfig,
    is_complete,
)
from pipelines import cli
from tests.conftest import register_version


@pytest.fixture()
def registry(tmp_path) -> IntentRegistry:
    return IntentRegistry(RegistryConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))


def test_force_promote_then_rollback_restores_the_previous_champion(
    registry, small_slice, tmp_path
):
    first = register_version(small_slice, registry, tmp_path / "a")
    second = register_version(small_slice.sample(frac=1, random_state=2), registry, tmp_path / "a")
    registry.force_promote(first, "bootstrap")
    registry.force_promote(second, "hotfix for the card intents")
    assert str(registry.version_by_alias("champion").version) == second

    assert registry.rollback("hotfix misbehaved") == first
    assert str(registry.version_by_alias("champion").version) == first
    history = registry.status().gate_history
    assert [(e.version, e.checks[0].name) for e in history] == [
        (first, "rollback"),
        (second, "forced"),
        (first, "forced"),
    ]
    assert "hotfix misbehaved" in history[0].checks[0].reason


def test_rollback_without_history_and_promote_without_reason_fail_clearly(
    registry, small_slice, tmp_path
):
    with pytest.raises(LookupError, match="no champion"):
        registry.rollback()
    only = register_version(small_slice, registry, tmp_path / "a")
    with pytest.raises(ValueError, match="reason"):
        registry.force_promote(only, "  ")
    registry.force_promote(only, "first")
    with pytest.raises(LookupError, match="no previous champion"):
        registry.rollback()


def test_logging_a_model_leaves_no_mlflow_uri_in_the_environment(
    registry, small_slice, tmp_path, monkeypatch
):
    import os

    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    register_version(small_slice, registry, tmp_path / "a")
    assert "MLFLOW_TRACKING_URI" not in os.environ and "MLFLOW_REGISTRY_URI" not in os.environ


def _break_model_file(registry: IntentRegistry, version: str) -> None:
    """Overwrite a version's skops file with bytes that are not a model."""
    location = registry.client.get_model_version_download_uri(registry.name, version)
    model_file = next(Path(location.removeprefix("file://")).rglob("model.skops"))
    model_file.write_bytes(b"not a skops archive")


def test_force_promote_refuses_a_version_that_cannot_be_loaded(
    registry, small_slice, tmp_path, monkeypatch, capsys
):
    good = register_version(small_slice, registry, tmp_path / "a")
    broken = register_version(small_slice.sample(frac=1, random_state=3), registry, tmp_path / "a")
    registry.force_promote(good, "bootstrap")
    _break_model_file(registry, broken)

    with pytest.raises(ModelLoadError, match=f"version {broken} .* cannot be loaded"):
        registry.force_promote(broken, "try the broken one")
    assert str(registry.version_by_alias(CHAMPION).version) == good

    # `make promote VERSION=n`: one line on stderr, a failing exit code, champion unchanged.
    monkeypatch.setenv("MLFLOW_TRACKING_URI", registry.config.tracking_uri)
    monkeypatch.delenv("MLFLOW_REGISTRY_URI", raising=False)
    capsys.readouterr()
    assert cli.main(["promote", "--version", broken, "--reason", "cli"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith(f"error: version {broken} of intent-classifier cannot be loaded")
    assert "\n" not in err
    assert cli.main(["promote", "--version", "99", "--reason", "cli"]) == 2
    assert "no version '99'" in capsys.readouterr().err
    assert str(registry.version_by_alias(CHAMPION).version) == good
    assert [entry.version for entry in registry.gate_history()] == [good]


def test_only_complete_versions_are_reused_or_promoted(registry, small_slice, tmp_path):
    complete = register_version(small_slice, registry, tmp_path / "a")
    fingerprint = registry.version(complete).tags[TAG_FINGERPRINT]
    location = registry.client.get_model_version_download_uri(registry.name, complete)
    # What the earlier two-step registration left when killed between the version and its tags:
    # a READY version with some of its tags. Newer than `complete`, so it would be found first.
    partial = registry.client.create_model_version(
        registry.name, location, tags={TAG_FINGERPRINT: fingerprint}
    ).version
    assert not is_complete(registry.version(partial))
    assert str(registry.find_by_fingerprint(fingerprint).version) == complete
    with pytest.raises(ModelLoadError, match=f"version {partial} .*incomplete"):
        registry.force_promote(str(partial), "incomplete")
    assert registry.version_by_alias(CHAMPION) is None

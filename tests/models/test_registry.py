"""Forced promotion and rollback against a real MLflow registry."""

from __future__ import annotations

import pytest

from models.registry import IntentRegistry, RegistryConfig
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
    history = registry.status()["gate_history"]
    assert [(e["version"], e["checks"][0]["name"]) for e in history] == [
        (first, "rollback"),
        (second, "forced"),
        (first, "forced"),
    ]
    assert "hotfix misbehaved" in history[0]["checks"][0]["reason"]


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

"""What an interrupted training or promotion leaves, settled by the next run (real MLflow)."""

from __future__ import annotations

import json
import socket
import subprocess
from datetime import UTC, datetime, timedelta

import psutil
import pytest

from models.gate_records import Check, GateDecision
from models.process_stamp import ProcessStamp
from models.promotion_state import PromotionState, apply_pending, record_decision
from models.recovery import TAG_INTERRUPTED, Outcome, fail_interrupted_runs, recover
from models.registry import (
    CHALLENGER,
    CHAMPION,
    TAG_FALLBACK,
    TAG_FINGERPRINT,
    TAG_TRAINED_AT,
    IntentRegistry,
    RegistryConfig,
)
from models.tracking import RUN_TAG_REGISTERED
from tests.conftest import register_version


@pytest.fixture()
def registry(tmp_path) -> IntentRegistry:
    return IntentRegistry(RegistryConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))


def _dead_stamp() -> ProcessStamp:
    """The stamp of a real process that has ended."""
    process = subprocess.Popen(["sleep", "60"])
    stamp = ProcessStamp(
        socket.gethostname(), process.pid, psutil.Process(process.pid).create_time()
    )
    process.kill()
    process.wait()
    return stamp


def test_only_runs_whose_process_is_gone_end_failed(registry):
    client = registry.client
    experiment = client.create_experiment("training")
    now = datetime.now(UTC)
    me = ProcessStamp.current()
    ms = int(now.timestamp() * 1000)
    old = int((now - timedelta(hours=13)).timestamp() * 1000)

    def run(tags: dict[str, str], start: int = ms) -> str:
        return client.create_run(experiment, start_time=start, tags=tags).info.run_id

    killed = run(_dead_stamp().to_tags())
    reused_pid = run(ProcessStamp(me.host, me.pid, me.started - 3600).to_tags())
    legacy_old = run({}, old)
    alive = run(me.to_tags(), old)  # old but its process lives: never failed
    legacy_young = run({})
    elsewhere = run(ProcessStamp("another-host", 1, 0.0).to_tags())

    failed = fail_interrupted_runs(client, experiment, now=now)

    assert set(failed) == {killed, reused_pid, legacy_old}
    for run_id in failed:
        closed = client.get_run(run_id)
        assert closed.info.status == "FAILED"
        assert closed.data.tags[TAG_INTERRUPTED].startswith("interrupted:")
    assert f"process {me.pid}" in client.get_run(reused_pid).data.tags[TAG_INTERRUPTED]
    for run_id in (alive, legacy_young, elsewhere):
        assert client.get_run(run_id).info.status == "RUNNING"
    assert fail_interrupted_runs(client, experiment, now=now) == []


def test_a_finished_run_never_registered_is_registered_once_not_retrained(
    registry, small_slice, tmp_path
):
    first = registry.version(register_version(small_slice, registry, tmp_path / "a"))
    fingerprint = first.tags[TAG_FINGERPRINT]
    # The process died after ending the run and before creating the version.
    registry.client.delete_model_version(registry.name, first.version)
    registry.client.delete_tag(first.run_id, RUN_TAG_REGISTERED)

    recovered = recover(registry, "serving-tests", fingerprint)
    assert recovered.outcome is Outcome.REGISTERED_LEFTOVER
    version = recovered.version
    assert version.run_id == first.run_id
    assert {key: version.tags[key] for key in (TAG_FINGERPRINT, TAG_TRAINED_AT, TAG_FALLBACK)} == {
        key: first.tags[key] for key in (TAG_FINGERPRINT, TAG_TRAINED_AT, TAG_FALLBACK)
    }
    registry.load_pipeline(version.version)

    again = recover(registry, "serving-tests", fingerprint)
    assert again.outcome is Outcome.REUSED and again.version.version == version.version
    assert len(registry.versions()) == 1

    # A version someone deleted on purpose is not brought back: its run says it was registered.
    registry.client.delete_model_version(registry.name, version.version)
    assert recover(registry, "serving-tests", fingerprint).outcome is Outcome.NONE


def _complete_version(registry: IntentRegistry, label: str) -> str:
    """A registered version with every required tag (no model files: never loaded here)."""
    registry.ensure_registered_model()
    tags = {TAG_FINGERPRINT: label, TAG_TRAINED_AT: "2026-11-01", TAG_FALLBACK: "{}"}
    created = registry.client.create_model_version(registry.name, "file:///nowhere", tags=tags)
    return str(created.version)


def _passed(version: str) -> GateDecision:
    return GateDecision(version, [Check("accuracy_floor", True, "test")])


def test_a_recorded_promotion_is_finished_by_the_rerun(registry):
    old, new = _complete_version(registry, "a"), _complete_version(registry, "b")
    registry.set_alias(CHAMPION, old)
    registry.set_alias(CHALLENGER, new)
    record_decision(registry, _passed(new))
    # Killed here: decision stored, aliases not moved.
    assert registry.gate_entries(new)[-1].promotion == PromotionState.PENDING

    assert apply_pending(registry, new) is PromotionState.DONE
    assert str(registry.version_by_alias(CHAMPION).version) == new
    assert registry.version_by_alias(CHALLENGER) is None
    assert registry.version(new).tags["previous_champion"] == old
    assert registry.gate_entries(new)[-1].promotion == PromotionState.DONE
    assert apply_pending(registry, new) is None  # nothing left to do


def test_a_pending_promotion_never_undoes_a_later_manual_choice(registry):
    old, new, chosen = (_complete_version(registry, label) for label in "abc")
    registry.set_alias(CHAMPION, old)
    record_decision(registry, _passed(new))
    registry.set_alias(CHAMPION, chosen)  # someone moved champion before the rerun

    assert apply_pending(registry, new) is PromotionState.SUPERSEDED
    assert str(registry.version_by_alias(CHAMPION).version) == chosen
    entry = registry.gate_entries(new)[-1]
    assert entry.promotion == PromotionState.SUPERSEDED and entry.champion_before == old
    assert json.loads(registry.version(new).tags["gate_decisions"])[-1]["passed"] is True

"""The MLflow model registry as this platform uses it: versions, aliases, gate records, status.

Models are stored with skops (no pickle) and loaded here against an allow-list kept in code, not
read from the model file, so loading a registered version cannot run arbitrary code.

A version is usable only when it is *complete*: READY, with its training fingerprint, training
time and fallback policy tags. `models/tracking.py` creates versions together with those tags in
one registry write, so a crash cannot leave a version without them; versions from older code (or
written by hand) that lack them are never reused, promoted or served.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pandas as pd

from models.gate_records import Check, GateDecision
from models.mlflow_client import download_model, mlflow_client, mlflow_error
from models.registry_records import (
    GateRecord,
    RegistryStatus,
    VersionDescription,
    parse_gate_entries,
)

if TYPE_CHECKING:  # MLflow is imported when a registry is first created (models/mlflow_client.py)
    from mlflow.entities.model_registry import ModelVersion

    from models.inference import IntentInference

CHAMPION, CHALLENGER = "champion", "challenger"
TRUSTED_SKOPS_TYPES: list[str] = [
    "features.dialogue.DialogueTokens",
    "features.embeddings.SentenceEmbeddings",
    "features.paraphrase.ParaphraseEmbeddings",
    "features.transformers.MessageFeatures",
    "models.calibration.TemperatureScaledClassifier",
    "models.linear_rbf.LinearRbfClassifier",
    "sklearn.calibration._CalibratedClassifier",
    "sklearn.calibration._TemperatureScaling",
    "sklearn.tree._tree.Tree",
]
# Metrics surfaced by `status` and /version; per-intent metrics stay in the MLflow run.
HEADLINE_METRICS = (
    "test_accuracy",
    "macro_f1",
    "weighted_f1",
    "validation_accuracy",
    "validation_macro_f1",
    "test_ece",  # expected calibration error of the served probabilities (models/calibration.py)
    "oos_recall",  # held-out intents answered nlu_fallback (models/out_of_scope.py)
    "oos_in_scope_answered_accuracy",
)
TAG_FINGERPRINT = "training_fingerprint"
TAG_TRAINED_AT = "trained_at"
TAG_FALLBACK = "fallback_policy"
TAG_GATE = "gate_decisions"
TAG_PREVIOUS_CHAMPION = "previous_champion"
TAG_CANDIDATE = "candidate"
REQUIRED_VERSION_TAGS = (TAG_FINGERPRINT, TAG_TRAINED_AT, TAG_FALLBACK)


class ModelLoadError(RuntimeError):
    """A version that cannot be used: incomplete registration, missing or unreadable files."""


def missing_tags(version: ModelVersion) -> list[str]:
    """The required tags a version lacks (empty for a complete version)."""
    return [key for key in REQUIRED_VERSION_TAGS if not version.tags.get(key)]


def is_complete(version: ModelVersion) -> bool:
    """READY and carrying every required tag: the only versions reuse, gate and serving accept."""
    return version.status == "READY" and not missing_tags(version)


@dataclass(frozen=True)
class RegistryConfig:
    """Where the registry is and what the model is called."""

    tracking_uri: str
    registry_uri: str | None = None
    model_name: str = "intent-classifier"


class IntentRegistry:
    """Reads and writes versions, aliases and gate decisions of one registered model."""

    def __init__(self, config: RegistryConfig) -> None:
        self.config = config
        self.client = mlflow_client(config.tracking_uri, config.registry_uri)

    @property
    def name(self) -> str:
        """Registered model name."""
        return self.config.model_name

    def ensure_registered_model(self) -> None:
        """Create the registered model entry if it does not exist yet."""
        try:
            self.client.get_registered_model(self.name)
        except mlflow_error():
            self.client.create_registered_model(
                self.name, description="Customer-support intent classifier (Banking77 intents)."
            )

    def version_by_alias(self, alias: str) -> ModelVersion | None:
        """The version an alias points to, or None."""
        try:
            return self.client.get_model_version_by_alias(self.name, alias)
        except mlflow_error():
            return None

    def version(self, version: str) -> ModelVersion:
        """A version by number."""
        return self.client.get_model_version(self.name, str(version))

    def versions(self) -> list[ModelVersion]:
        """All versions, newest first."""
        try:
            found = self.client.search_model_versions(f"name='{self.name}'")
        except mlflow_error():
            return []
        return sorted(found, key=lambda v: int(v.version), reverse=True)

    def find_by_fingerprint(self, fingerprint: str) -> ModelVersion | None:
        """The newest complete version trained on exactly this data and configuration, if any."""
        return next(
            (
                v
                for v in self.versions()
                if v.tags.get(TAG_FINGERPRINT) == fingerprint and is_complete(v)
            ),
            None,
        )

    def require_complete(self, version: str) -> ModelVersion:
        """The version; LookupError if unknown, ModelLoadError naming what it lacks."""
        try:
            found = self.version(version)
        except mlflow_error() as exc:
            raise LookupError(f"{self.name} has no version {version!r}") from exc
        if found.status != "READY":
            raise ModelLoadError(f"version {version} of {self.name} is {found.status}, not READY")
        if missing := missing_tags(found):
            raise ModelLoadError(
                f"version {version} of {self.name} is incomplete (no {', '.join(missing)} tag)"
            )
        return found

    def set_alias(self, alias: str, version: str) -> None:
        """Point `alias` at `version`."""
        self.client.set_registered_model_alias(self.name, alias, str(version))

    def promote(self, version: str) -> str | None:
        """Make `version` the champion; returns the version it replaced, remembered for rollback."""
        previous = self.version_by_alias(CHAMPION)
        if previous is not None and previous.version == str(version):
            return None
        if previous is not None:
            self.client.set_model_version_tag(
                self.name, str(version), TAG_PREVIOUS_CHAMPION, previous.version
            )
        self.set_alias(CHAMPION, version)
        return previous.version if previous else None

    def force_promote(self, version: str, reason: str) -> GateDecision:
        """Promote `version` without the gate; the reason is recorded as its decision.

        The version is loaded first, exactly as serving will load it: a version that cannot be
        loaded is refused (ModelLoadError) and `champion` does not move.
        """
        if not reason.strip():
            raise ValueError("a forced promotion needs a reason")
        self.require_complete(version)  # fails clearly for an unknown version too
        self.load_pipeline(version)
        decision = GateDecision(str(version), [Check("forced", True, reason.strip())])
        self.record_gate(GateRecord.of(decision))
        self.promote(str(version))
        return decision

    def rollback(self, reason: str = "manual rollback") -> str:
        """Move `champion` back to the version it replaced; returns that version."""
        champion = self.version_by_alias(CHAMPION)
        if champion is None:
            raise LookupError(f"{self.name} has no champion to roll back")
        previous = champion.tags.get(TAG_PREVIOUS_CHAMPION)
        if not previous:
            raise LookupError(f"champion v{champion.version} has no previous champion recorded")
        self.set_alias(CHAMPION, previous)
        note = f"rolled back from v{champion.version}: {reason}"
        self.record_gate(GateRecord.of(GateDecision(previous, [Check("rollback", True, note)])))
        return previous

    def record_gate(self, record: GateRecord) -> None:
        """Append a gate decision to its version's history tag."""
        self.write_gate_entries(record.version, [*self.gate_entries(record.version), record])

    def gate_entries(self, version: str) -> list[GateRecord]:
        """One version's gate decisions, oldest first."""
        return parse_gate_entries(self.version(version).tags.get(TAG_GATE))

    def write_gate_entries(self, version: str, entries: Sequence[GateRecord]) -> None:
        """Replace one version's gate decisions (a single tag write)."""
        document = json.dumps([entry.to_dict() for entry in entries])
        self.client.set_model_version_tag(self.name, str(version), TAG_GATE, document)

    def load_pipeline(self, version: str) -> Any:
        """Load a version's scikit-learn pipeline from its skops file (ModelLoadError if not)."""
        import skops.io

        with tempfile.TemporaryDirectory() as scratch:
            try:
                uris = (self.config.tracking_uri, self.config.registry_uri)
                local = Path(download_model(self.name, str(version), scratch, *uris))
                skops_file = next(local.rglob("model.skops"), None)
                if skops_file is None:
                    raise FileNotFoundError("its artifacts hold no model.skops")
                return skops.io.load(skops_file, trusted=TRUSTED_SKOPS_TYPES)
            except Exception as exc:  # any cause: missing files, corrupt file, untrusted type
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                raise ModelLoadError(
                    f"version {version} of {self.name} cannot be loaded: {reason}"
                ) from exc

    def load_inference(self, version: str) -> IntentInference:
        """A complete version ready to predict, with its own calibrated fallback policy.

        Refuses (ModelLoadError) a version that is not READY, lacks a required tag, carries a
        fallback policy tag that is not one, or whose files cannot be loaded: a version is never
        served with a default policy. LookupError for a version that does not exist.
        """
        # Imported here: scikit-learn is needed to predict, not to read the registry (`status`).
        from models.fallback import FallbackPolicy
        from models.inference import IntentInference
        from models.predictions import ModelRef

        found = self.require_complete(version)
        try:
            fallback = FallbackPolicy(**json.loads(found.tags[TAG_FALLBACK]))
        except (ValueError, TypeError) as exc:  # not JSON, not an object, or the wrong fields
            raise ModelLoadError(
                f"version {version} of {self.name} has an unreadable {TAG_FALLBACK} tag: {exc}"
            ) from exc
        pipeline = self.load_pipeline(version)
        return IntentInference(pipeline, fallback, ModelRef(self.name, str(found.version)))

    def load_reference(self, version: str) -> pd.DataFrame | None:
        """The training snapshot (text, intent, split) stored with a version's run, or None."""
        run_id = self.version(version).run_id
        if run_id is None:  # registered from a model source, not a run: no snapshot to read
            return None
        with tempfile.TemporaryDirectory() as scratch:
            try:
                path = self.client.download_artifacts(
                    run_id, "reference/reference.parquet", scratch
                )
            except Exception:  # older versions were logged without one
                return None
            return pd.read_parquet(path)

    def describe(self, version: ModelVersion) -> VersionDescription:
        """A version's run, training time, headline metrics and fallback policy."""
        run = self.client.get_run(version.run_id) if version.run_id else None
        metrics = run.data.metrics if run else {}
        fallback = json.loads(version.tags.get(TAG_FALLBACK, "{}"))
        return VersionDescription(
            version=str(version.version),
            run_id=version.run_id,
            trained_at=version.tags.get(TAG_TRAINED_AT),
            metrics={key: metrics[key] for key in HEADLINE_METRICS if key in metrics},
            fallback_threshold=fallback.get("threshold"),
            fallback_margin=fallback.get("margin"),
            aliases=tuple(version.aliases),
        )

    def gate_history(self) -> list[GateRecord]:
        """Every promotion decision on every version, newest first."""
        entries = [
            entry
            for version in self.versions()
            for entry in parse_gate_entries(version.tags.get(TAG_GATE))
        ]
        return sorted(entries, key=lambda entry: entry.decided_at or "", reverse=True)

    def status(self) -> RegistryStatus:
        """What `make status` prints: champion, challenger and the gate history."""
        champion = self.version_by_alias(CHAMPION)
        challenger = self.version_by_alias(CHALLENGER)
        return RegistryStatus(
            model_name=self.name,
            champion=self.describe(champion) if champion else None,
            challenger=self.describe(challenger) if challenger else None,
            gate_history=tuple(self.gate_history()),
        )

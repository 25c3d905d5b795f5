"""Whether a training run's labelled examples can differ from those the last training used.

`training_examples` is built from the rows of every conversation holding a labelled customer
turn (the turn itself, and the rows its context and example key are filled from) and the split
settings. A run whose new messages carry no label, and join no labelled conversation, leaves
those rows as they were: building the examples again, fitting and judging would reproduce the
last run's outcome. Such a run skips the training steps and says why (`SkipDecision`).

Skipped only when all of these hold, so a skip can never hide work the model needs:

- the digest of those rows (`input_digest`) equals the one the last `training_examples`
  materialisation recorded;
- the training settings (`settings_digest`: the run config of the training steps and of the
  resources, the `TRAIN_`/`GATE_`/`FEATURES_` environment, the training code version, the
  split settings) are equal;
- `intent_model` and `model_promotion` were both materialised after those examples (the chain
  finished: an interrupted or failed training is never skipped);
- the run is not forced (run tag `supportloop/retrain`, `force_retrain` in its config).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import dagster as dg
import numpy as np
import pandas as pd

from conversations.schema import Speaker
from models.retraining import frame_hashes
from pipelines.retraining import RETRAIN_TAG

# training_examples metadata: the rows and the settings the examples were built from.
INPUT_DIGEST = "input_digest"
SETTINGS_DIGEST = "settings_digest"
TRAINING_STEPS = ("training_examples", "intent_model", "model_promotion")
# Provenance only (which file, which line): examples never read it.
PROVENANCE = frozenset({"source", "source_line"})
# Not MLFLOW_: MLflow itself sets MLFLOW_TRACKING_URI in a process that used it.
SETTINGS_ENV = ("TRAIN_", "GATE_", "FEATURES_")


def example_input_rows(conversations: pd.DataFrame) -> pd.DataFrame:
    """The rows examples are built from: every row of a conversation with a labelled turn."""
    labelled = (conversations["speaker"] == Speaker.CUSTOMER.value) & conversations[
        "intent"
    ].notna()
    if "conversation_id" not in conversations:
        return conversations[labelled]
    wanted = conversations.loc[labelled, "conversation_id"].unique()
    return conversations[conversations["conversation_id"].isin(wanted) | labelled]


@dataclass(frozen=True)
class InputRows:
    """The example input rows and one 64-bit hash of each (every column but provenance).

    Hashed once a run: the input digest and the per-conversation digests of the context cache
    (pipelines/example_contexts.py) both come from these hashes (~2 s of CPU at 1M messages).
    """

    rows: pd.DataFrame
    hashes: np.ndarray
    columns: tuple[str, ...]

    @classmethod
    def of(cls, conversations: pd.DataFrame) -> InputRows:
        """The input rows of `conversations` and their hashes."""
        rows = example_input_rows(conversations)
        columns = tuple(sorted(name for name in rows.columns if name not in PROVENANCE))
        hashes = frame_hashes(rows[list(columns)])
        return cls(rows, hashes, columns)

    def digest(self) -> str:
        """Digest of the rows in any order."""
        # The hashes sorted: the same rows in any order give the same digest.
        digest = hashlib.sha256(np.sort(self.hashes).tobytes())
        digest.update(f"|{len(self.rows)}|{','.join(self.columns)}".encode())
        return digest.hexdigest()[:24]


def input_digest(conversations: pd.DataFrame) -> str:
    """Digest of the example input rows, in any order."""
    return InputRows.of(conversations).digest()


def settings_digest(run_config: Mapping[str, Any], code_version: str, split: str) -> str:
    """What else decides the examples and the training outcome, as one digest."""
    ops = run_config.get("ops") or {}
    chosen = {
        "ops": {name: ops.get(name) for name in TRAINING_STEPS},
        "resources": run_config.get("resources"),
        "env": sorted((k, v) for k, v in os.environ.items() if k.startswith(SETTINGS_ENV)),
        "code": code_version,
        "split": split,
    }
    payload = json.dumps(chosen, sort_keys=True, default=str)
    return hashlib.sha256(payload.encode()).hexdigest()[:16]


@dataclass(frozen=True)
class SkipDecision:
    """Whether the training steps are skipped, and why (shown in Dagster and the summary)."""

    skip: bool
    reason: str


def forced(run_config: Mapping[str, Any], tags: Mapping[str, str]) -> str | None:
    """Why the run must train whatever changed (None when it need not)."""
    model_ops = (run_config.get("ops") or {}).get("intent_model") or {}
    if (model_ops.get("config") or {}).get("force_retrain"):
        return "run config force_retrain"
    if tag := tags.get(RETRAIN_TAG):
        return f"run tag {RETRAIN_TAG}={tag}"
    return None


def _latest(instance: dg.DagsterInstance, name: str) -> dg.EventLogRecord | None:
    records = instance.fetch_materializations(dg.AssetKey(name), limit=1).records
    return records[0] if records else None


def _value(metadata: Mapping[str, Any], key: str) -> Any:
    return getattr(metadata.get(key), "value", metadata.get(key))


def decide_skip(context: dg.AssetExecutionContext, inputs: str, settings: str) -> SkipDecision:
    """The rule of the module docstring, against this instance's materialisations."""
    run = context.run
    if reason := forced(run.run_config, run.tags):
        return SkipDecision(False, f"forced: {reason}")
    # None or empty: the job's whole selection (training_job holds the training steps).
    selection = run.asset_selection
    if selection and not {dg.AssetKey(name) for name in TRAINING_STEPS} <= selection:
        return SkipDecision(False, "the run does not select the training steps")
    last = _latest(context.instance, "training_examples")
    if last is None or last.asset_materialization is None:
        return SkipDecision(False, "no examples built yet")
    recorded = last.asset_materialization.metadata
    if _value(recorded, INPUT_DIGEST) != inputs:
        return SkipDecision(False, "rows of labelled conversations changed")
    if _value(recorded, SETTINGS_DIGEST) != settings:
        return SkipDecision(False, "training settings changed")
    for name in TRAINING_STEPS[1:]:
        done = _latest(context.instance, name)
        if done is None or done.storage_id < last.storage_id:
            return SkipDecision(False, f"{name} did not finish after the last examples")
    return SkipDecision(
        True,
        f"no labelled example and no training setting changed since run {last.run_id[:8]} "
        "built the examples, trained and judged them: training skipped",
    )

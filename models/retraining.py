"""When a training run retrains: the retrain rule (pure: no MLflow, no Dagster).

A run that brings a little new labelled data does not retrain on the union and run the gate
again: it keeps the current model until the examples have changed enough since the version the
last model was trained on. "Changed" counts new, relabelled and removed examples, compared
example by example (`ExampleIndex`: a 64-bit hash of each example's text, context and intent,
keyed by its message) with the index that version's MLflow run logged. The split is left out of
the hash: validation is re-drawn among the rest when data arrives (models/splits.py), which is not
new data.

Retraining happens when any of these holds, first match wins (the reason is reported):

1. it is forced: a run config flag or tag, or the drift sensor's request (pipelines/automation.py);
2. there is no model version yet, or the last one has no example index (older runs; an index
   of the form before the row hashes counts as none);
3. the training configuration (or training code version) differs from the last version's;
4. the change reaches both `min_new_examples` and `min_new_fraction` of the last version's
   examples (TRAIN_MIN_NEW_EXAMPLES, TRAIN_MIN_NEW_FRACTION; 0 leaves a threshold out).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict

# What identifies an example and what is its content, for the index.
KEY_COLUMN = "message_id"
CONTENT_COLUMNS = ("text", "context", "intent")
# Columns of (nearly) distinct values: hashed without factorizing them first (the hash is the
# same either way; ~0.1 s instead of ~0.4 s for 1M message ids).
DISTINCT_COLUMNS = frozenset({"message_id"})
# The stored index's hash column (an older form held a hex `digest` per key).
INDEX_HASH = "row_hash"


class RetrainPolicy(BaseSettings):
    """How much the labelled examples must change before a run retrains.

    TRAIN_MIN_NEW_EXAMPLES and TRAIN_MIN_NEW_FRACTION; both must be reached. A training run's
    config (`ops.intent_model.config`) overrides them.
    """

    model_config = SettingsConfigDict(env_prefix="TRAIN_", frozen=True)

    min_new_examples: int = Field(default=20, ge=0)
    min_new_fraction: float = Field(default=0.05, ge=0, le=1)

    def describe(self) -> str:
        """The thresholds as the skip reason names them."""
        return f"threshold ≥ {self.min_new_examples} and ≥ {self.min_new_fraction:.1%}"


def plain(value: Any) -> str | None:
    """An example's field as text (None, NaN and "" are all absent; dicts in key order)."""
    if isinstance(value, dict):
        return json.dumps(value, sort_keys=True)
    if value is None or pd.isna(value) or value == "":
        return None
    return str(value)


def plain_column(values: pd.Series) -> pd.Series:
    """`plain` of each value as an object column; texts (nearly all values) go straight."""
    cells = [value if type(value) is str and value else plain(value) for value in values.tolist()]
    return pd.Series(cells, index=values.index, dtype=object)


def column(examples: pd.DataFrame, name: str) -> pd.Series:
    """A column of the examples, or an all-absent one when they lack it."""
    return examples[name] if name in examples else pd.Series(None, index=examples.index)


def column_hashes(examples: pd.DataFrame, names: Iterable[str]) -> pd.DataFrame:
    """Per column of `names`, a 64-bit hash of each row's plain value (pandas' SipHash).

    Computed once per run for the fingerprint and the index together (~0.2 s a column at 505k
    examples). The same values give the same hash in every process.
    """
    return pd.DataFrame(
        {
            name: pd.util.hash_array(
                plain_column(column(examples, name)).to_numpy(dtype=object),
                categorize=name not in DISTINCT_COLUMNS,
            )
            for name in names
        },
        index=examples.index,
    )


def frame_hashes(frame: pd.DataFrame) -> np.ndarray:
    """One 64-bit hash per row of `frame`'s values as they are (each column hashed on its own,
    `DISTINCT_COLUMNS` without factorizing first; then the per-column hashes per row)."""
    hashed = pd.DataFrame(
        {
            name: pd.util.hash_pandas_object(
                frame[name], index=False, categorize=name not in DISTINCT_COLUMNS
            ).to_numpy()
            for name in frame.columns
        }
    )
    return pd.util.hash_pandas_object(hashed, index=False).to_numpy(dtype=np.uint64)


def row_hashes(
    examples: pd.DataFrame, names: Iterable[str], hashed: pd.DataFrame | None = None
) -> np.ndarray:
    """One 64-bit hash per row of the plain values of columns `names` (absent: None, NaN, "").

    Vectorised, where a digest per encoded row took ~2 s at 505k examples. `hashed`: the
    `column_hashes` of (at least) `names`, when already computed.
    """
    names = list(names)
    hashed = column_hashes(examples, names) if hashed is None else hashed
    return pd.util.hash_pandas_object(hashed[names], index=False).to_numpy(dtype=np.uint64)


@dataclass(frozen=True, eq=False)
class ExampleIndex:
    """Each example's content hash (`row_hashes` of text, context, intent) by its key.

    The key is `message:<id>`, or `text:<text>` for an example without a message id; a key
    seen twice keeps its last example.
    """

    digests: pd.Series  # index: the unique keys; values: uint64 content hashes

    @classmethod
    def from_examples(
        cls, examples: pd.DataFrame, hashed: pd.DataFrame | None = None
    ) -> ExampleIndex:
        """The index of a training examples frame (`hashed`: its `column_hashes`, if known)."""
        ids = plain_column(column(examples, KEY_COLUMN))
        texts = plain_column(column(examples, "text")).fillna("None")
        keys = ("message:" + ids).where(ids.notna(), "text:" + texts)
        hashes = row_hashes(examples, CONTENT_COLUMNS, hashed)
        digests = pd.Series(hashes, index=pd.Index(keys.array))
        return cls(digests[~digests.index.duplicated(keep="last")])

    def to_frame(self) -> pd.DataFrame:
        """Two columns, key and row_hash: how a training run stores it."""
        return pd.DataFrame(
            {"key": self.digests.index.to_numpy(dtype=object), INDEX_HASH: self.digests.to_numpy()}
        )

    @classmethod
    def from_frame(cls, frame: pd.DataFrame) -> ExampleIndex | None:
        """The index `to_frame` stored; None for an index of another form.

        Indexes stored before the row hashes hold a hex `digest` per key: their digests cannot
        be compared with these, so such a version counts as one without an index (retrain).
        """
        if INDEX_HASH not in frame:
            return None
        hashes = frame[INDEX_HASH].to_numpy(dtype=np.uint64)
        return cls(pd.Series(hashes, index=pd.Index(frame["key"].to_numpy(dtype=object))))

    def __len__(self) -> int:
        return len(self.digests)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, ExampleIndex) and self.digests.equals(other.digests)

    __hash__ = None  # type: ignore[assignment]  # mutable contents: not hashable


@dataclass(frozen=True)
class ExampleChange:
    """How the examples differ from a version's: counts of each kind of change."""

    new: int
    relabelled: int  # same message, different text, context or intent
    removed: int
    base_size: int

    @property
    def changed(self) -> int:
        """Every example that differs."""
        return self.new + self.relabelled + self.removed

    @property
    def fraction(self) -> float:
        """Changed examples as a share of the version's examples."""
        return self.changed / max(self.base_size, 1)

    def describe(self) -> str:
        """E.g. `101 changed labelled examples (1.0 %: 101 new, 0 relabelled, 0 removed)`."""
        return (
            f"{self.changed} changed labelled examples ({self.fraction:.1%}: {self.new} new, "
            f"{self.relabelled} relabelled, {self.removed} removed)"
        )


def compare(base: ExampleIndex, current: ExampleIndex) -> ExampleChange:
    """What changed from `base` (a version's examples) to `current`."""
    old, now = base.digests, current.digests
    # Both indexes hold unique keys: each current key is found once or is new.
    where = old.index.get_indexer(now.index)
    found = where >= 0
    relabelled = int((old.to_numpy()[where[found]] != now.to_numpy()[found]).sum())
    new, kept = int((~found).sum()), int(found.sum())
    return ExampleChange(new, relabelled, len(old) - kept, len(old))


@dataclass(frozen=True)
class TrainedVersion:
    """What the last version was trained on, as its run recorded it (None: not recorded)."""

    version: str
    index: ExampleIndex | None
    config_digest: str | None


@dataclass(frozen=True)
class RetrainDecision:
    """Whether to retrain, why, and against which version the change was counted."""

    retrain: bool
    reason: str
    base_version: str | None = None
    change: ExampleChange | None = None

    def metadata(self) -> dict[str, Any]:
        """Flat values for asset metadata and logs."""
        counts: dict[str, Any] = {}
        if self.change is not None:
            counts = {
                "new_examples": self.change.new,
                "relabelled_examples": self.change.relabelled,
                "removed_examples": self.change.removed,
                "changed_fraction": round(self.change.fraction, 4),
            }
        return {
            "retrained": self.retrain,
            "retrain_reason": self.reason,
            "base_version": self.base_version or "none",
            **counts,
        }


def decide_retrain(
    policy: RetrainPolicy,
    current: ExampleIndex,
    config_digest: str,
    last: TrainedVersion | None,
    forced: Iterable[str] = (),
) -> RetrainDecision:
    """The retrain rule (module docstring) for the current examples and configuration."""
    if reasons := [reason for reason in forced if reason]:
        base = last.version if last else None
        return RetrainDecision(True, "forced: " + "; ".join(reasons), base)
    if last is None:
        return RetrainDecision(True, "no model version yet: training the first")
    if last.index is None:
        reason = f"version {last.version} recorded no example index (or an older form): retraining"
        return RetrainDecision(True, reason, last.version)
    change = compare(last.index, current)
    if last.config_digest != config_digest:
        reason = f"training configuration changed since version {last.version}"
        return RetrainDecision(True, reason, last.version, change)
    enough = (
        change.changed >= max(policy.min_new_examples, 1)
        and change.fraction >= policy.min_new_fraction
    )
    verdict = "retraining" if enough else "keeping it"
    reason = f"{change.describe()} since version {last.version}; {policy.describe()}: {verdict}"
    return RetrainDecision(enough, reason, last.version, change)

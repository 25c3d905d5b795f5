"""Deterministic train/validation/test assignment.

The test split is frozen by a hash of the normalised message text: a message, once in test,
stays in test for every retrain, and new data never moves old messages, so successive models
are scored on comparable data. Validation is a stratified, seeded split of the rest.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from conversations.schema import normalise_text

TRAIN, VALIDATION, TEST = "train", "validation", "test"
# Agent labels on test-split texts: held out from training and from the test split's truth
# (models/examples.py), scored by the gate's recent-feedback check.
FEEDBACK = "feedback"


def text_bucket(text: str) -> float:
    """A uniform number in [0, 1) that depends only on the normalised text."""
    digest = hashlib.sha256(normalise_text(text).encode("utf-8")).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def assign_splits(
    texts: Sequence[str],
    labels: Sequence[str],
    test_fraction: float = 0.2,
    validation_fraction: float = 0.1,
    seed: int = 0,
) -> np.ndarray:
    """The split name of each example: test by text hash, validation stratified among the rest.

    `test_fraction` 0 draws no test split by hash: the caller's test set comes from elsewhere
    (`make evaluate` makes the official test file the frozen test split, models/examples.py).
    """
    if not 0 <= test_fraction < 1 or not 0 < validation_fraction < 1:
        raise ValueError("test_fraction must be in [0, 1) and validation_fraction in (0, 1)")
    splits = np.array(
        [TEST if text_bucket(text) < test_fraction else TRAIN for text in texts], dtype=object
    )
    rest = np.flatnonzero(splits == TRAIN)
    if len(rest) < 2:
        return splits
    rest_labels = np.asarray(labels, dtype=object)[rest]
    share = validation_fraction / (1 - test_fraction)
    _, counts = np.unique(rest_labels, return_counts=True)
    # Stratify when every class can give a validation example; otherwise split plainly.
    stratify = rest_labels if counts.min() >= 2 and len(rest) * share >= len(counts) else None
    # Imported here: a pipeline run whose retrain rule keeps the model draws no validation
    # split, and scikit-learn's import is ~1 CPU s of such a run (bench/README.md, scaling).
    from sklearn.model_selection import train_test_split

    _, validation = train_test_split(rest, test_size=share, random_state=seed, stratify=stratify)
    splits[validation] = VALIDATION
    return splits

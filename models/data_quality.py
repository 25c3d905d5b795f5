"""Data-quality conditions on a training set, checked with Evidently tests before promotion."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd


@dataclass
class DataQualityResult:
    """Which Evidently tests passed and failed."""

    passed: list[str]
    failed: list[str]

    @property
    def ok(self) -> bool:
        """True when every test passed."""
        return not self.failed


def check_training_data(
    examples: pd.DataFrame, max_text_chars: int, max_duplicate_share: float = 0.01
) -> DataQualityResult:
    """No missing text or intent, no empty or over-long text, few duplicate rows.

    A duplicate row is the same message twice (same `message_id`, text and intent): equal texts
    of different messages are examples of their own (models/examples.py), not duplicates.
    """
    from evidently import DataDefinition, Dataset, Report
    from evidently.descriptors import TextLength
    from evidently.metrics import (
        DuplicatedRowCount,
        MaxValue,
        MinValue,
        MissingValueCount,
    )
    from evidently.tests import eq, gte, lte

    identity = ["message_id"] if "message_id" in examples else []
    frame = examples[[*identity, "text", "intent"]].reset_index(drop=True)
    definition = DataDefinition(
        id_column=identity[0] if identity else None,
        text_columns=["text"],
        categorical_columns=["intent"],
    )
    dataset = Dataset.from_pandas(
        frame, data_definition=definition, descriptors=[TextLength("text", alias="length")]
    )
    report = Report(
        [
            MissingValueCount(column="text", tests=[eq(0)]),
            MissingValueCount(column="intent", tests=[eq(0)]),
            MinValue(column="length", tests=[gte(1)]),
            MaxValue(column="length", tests=[lte(max_text_chars)]),
            DuplicatedRowCount(tests=[lte(int(max_duplicate_share * len(frame)))]),
        ]
    )
    snapshot = report.run(dataset, None)
    passed: list[str] = []
    failed: list[str] = []
    for test in snapshot.dict()["tests"]:
        (failed if str(test["status"]).endswith("FAIL") else passed).append(test["description"])
    return DataQualityResult(passed, failed)

"""message_features honours the FEATURES_ environment (FeatureSettings) unless the run config says.

Materialised with real Dagster on a two-row examples table: the asset's config default used to
be `use_spacy=True`, which overrode FEATURES_USE_SPACY=false from the environment.
"""

from __future__ import annotations

import dagster as dg
import pandas as pd

from features.linguistic import LINGUISTIC_NAMES
from pipelines.assets.features import message_features


@dg.asset(name="training_examples")
def two_examples() -> pd.DataFrame:
    """Stands in for the real examples asset: the columns message_features reads."""
    return pd.DataFrame(
        {
            "message_id": ["m1", "m2"],
            "text": ["where is my card?", "yes please"],
            "context": ["{}", '{"session": {"message_count": 2}}'],
            "ts": pd.to_datetime(["2026-01-01T10:00:00Z", None], utc=True),
            "intent": ["card_arrival", "confirm"],
            "split": ["train", "test"],
        }
    )


def _feature_columns(run_config: dict | None = None) -> list[str]:
    result = dg.materialize(
        [two_examples, message_features],
        run_config=run_config,
        resources={"io_manager": dg.mem_io_manager},
    )
    table = result.output_for_node("message_features")
    return list(table.columns)


def test_features_use_spacy_false_in_the_environment_turns_spacy_off(monkeypatch):
    monkeypatch.setenv("FEATURES_USE_SPACY", "false")
    columns = _feature_columns()
    assert not set(LINGUISTIC_NAMES) & set(columns)
    assert "polarity" in columns and "session_message_count" in columns


def test_the_run_config_still_overrides_the_environment(monkeypatch):
    monkeypatch.setenv("FEATURES_USE_SPACY", "false")
    config = {"ops": {"message_features": {"config": {"use_spacy": True}}}}
    assert set(LINGUISTIC_NAMES) <= set(_feature_columns(config))

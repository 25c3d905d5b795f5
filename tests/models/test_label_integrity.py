"""Poisoned feedback cannot move the frozen test split or the gate's verdict.

The store, readers, validation, example building and the gate are the pipeline's own code; only
the Dagster wiring around them is left out. The HTTP side (anonymous 401, customer 403) is
tested against a real server in tests/serving/test_service.py.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from conversations import store_engine, tables
from conversations.readers import read_conversation_store, read_labelled_csv
from conversations.schema import LabelSource, LabelTrust
from conversations.validation import validate_messages
from models.candidates import resolve
from models.examples import build_training_examples
from models.gate import gate_inputs
from models.gate_records import PromotionRules
from models.promotion import decide_promotion
from models.splits import TEST
from models.training import train_intent_model
from tests.conftest import write_slice

SPLIT = {"test_fraction": 0.2, "validation_fraction": 0.1, "seed": 0}


def _examples(csv_folder: Path, store_url: str) -> pd.DataFrame:
    raw = pd.concat(
        [read_labelled_csv(csv_folder / "train.csv"), read_conversation_store(store_url)],
        ignore_index=True,
    )
    return build_training_examples(validate_messages(raw, 2000).kept, **SPLIT)


def _poison(store_url: str, texts: list[tuple[str, str]], intents: list[str]) -> int:
    """Every test text relabelled to a wrong intent, three times over, at every low trust."""
    engine = store_engine.create_engine(store_url)
    start = datetime(2026, 11, 20, tzinfo=UTC)
    rows = [
        {
            "text": text,
            "intent": next(i for i in intents if i != right),
            "label_source": LabelSource.FEEDBACK.value,
            "trust": trust.value,
            "ts": start + timedelta(minutes=n),
        }
        for n, (text, right) in enumerate(texts)
        for trust in (LabelTrust.UNVERIFIED, LabelTrust.SERVICE)
        for _ in range(3)
    ]
    with engine.begin() as connection:
        connection.execute(sa.insert(tables.labels), rows)
    engine.dispose()
    return len(rows)


def _decision(examples: pd.DataFrame, challenger, champion) -> dict:
    inputs = gate_inputs(
        challenger, "2", champion, "1", examples, PromotionRules(min_invariance=0.5), 2000
    )
    return decide_promotion(inputs).to_dict()


def test_low_trust_labels_move_no_test_label_and_no_gate_verdict(tmp_path, small_slice):
    folder = write_slice(small_slice, tmp_path / "banking77")
    clean_url, poisoned_url = (f"sqlite:///{tmp_path / name}" for name in ("a.db", "b.db"))
    store_engine.create_engine(clean_url).dispose()
    clean = _examples(folder, clean_url)
    test = clean[clean["split"] == TEST]
    intents = sorted(small_slice["category"].unique())
    pairs = list(zip(test["text"], test["intent"], strict=True))
    written = _poison(poisoned_url, pairs, intents)
    assert written == 6 * len(test) > 0
    poisoned = _examples(folder, poisoned_url)

    def truth(frame: pd.DataFrame) -> list[tuple[str, str]]:
        part = frame[frame["split"] == TEST]
        return sorted(zip(part["text"], part["intent"], strict=True))

    assert truth(poisoned) == truth(clean)
    assert set(poisoned["split"]) == set(clean["split"])  # no feedback split from them either

    # Two real models: the gate's decision must be the same with and without the poison.
    splits = [clean[clean["split"] == name] for name in ("train", "validation", "test")]
    challenger = train_intent_model(resolve(["tfidf_logreg"]), *splits).pipeline
    few = [split.groupby("intent", group_keys=False).head(6) for split in splits[:2]]
    champion = train_intent_model(resolve(["tfidf_logreg"]), *few, splits[2]).pipeline
    assert _decision(poisoned, challenger, champion) == _decision(clean, challenger, champion)

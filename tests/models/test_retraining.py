"""The retrain rule: how much the examples changed since a version, and whether that retrains."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from models.retraining import (
    ExampleIndex,
    RetrainPolicy,
    TrainedVersion,
    column_hashes,
    compare,
    decide_retrain,
    plain,
    plain_column,
    row_hashes,
)

CONFIG = "config-a"


def _examples(n: int, prefix: str = "m", intent: str = "card_arrival") -> pd.DataFrame:
    return pd.DataFrame(
        {
            "message_id": [f"{prefix}-{i}" for i in range(n)],
            "text": [f"text {prefix} {i}" for i in range(n)],
            "context": [None] * n,
            "intent": [intent] * n,
            "split": ["train"] * n,
        }
    )


def _last(examples: pd.DataFrame, config: str = CONFIG) -> TrainedVersion:
    return TrainedVersion("3", ExampleIndex.from_examples(examples), config)


def test_new_relabelled_and_removed_examples_are_counted_and_a_new_split_is_not() -> None:
    base = _examples(100)
    current = base.copy()
    current.loc[0, "intent"] = "lost_card"  # relabelled
    current.loc[1, "context"] = '{"session": {"message_count": 2}}'  # same words, new context
    current.loc[2:9, "split"] = "validation"  # re-drawn validation: not new data
    current = pd.concat([current.iloc[:-3], _examples(7, prefix="n")])  # 3 removed, 7 new

    change = compare(ExampleIndex.from_examples(base), ExampleIndex.from_examples(current))

    assert (change.new, change.relabelled, change.removed) == (7, 2, 3)
    assert change.changed == 12 and change.fraction == pytest.approx(0.12)


def test_examples_without_a_message_id_are_keyed_by_their_text() -> None:
    base = _examples(3).assign(message_id=None)
    current = base.copy()
    current.loc[0, "intent"] = "lost_card"

    change = compare(ExampleIndex.from_examples(base), ExampleIndex.from_examples(current))

    assert (change.new, change.relabelled, change.removed) == (0, 1, 0)


def test_one_percent_new_examples_keeps_the_last_version_and_says_why() -> None:
    base = _examples(1000)
    current = pd.concat([base, _examples(10, prefix="n")])

    decision = decide_retrain(
        RetrainPolicy(), ExampleIndex.from_examples(current), CONFIG, _last(base)
    )

    assert not decision.retrain
    assert decision.base_version == "3"
    assert decision.reason.startswith("10 changed labelled examples (1.0%: 10 new, 0 relabelled")
    assert "since version 3" in decision.reason and "threshold ≥ 20 and ≥ 5.0%" in decision.reason
    assert decision.metadata()["new_examples"] == 10


def test_a_change_past_both_thresholds_retrains() -> None:
    base = _examples(1000)
    current = pd.concat([base, _examples(60, prefix="n")])

    decision = decide_retrain(
        RetrainPolicy(), ExampleIndex.from_examples(current), CONFIG, _last(base)
    )

    assert decision.retrain and decision.reason.endswith("retraining")


def test_both_thresholds_must_be_reached_and_zero_leaves_one_out() -> None:
    base = _examples(100)
    current = ExampleIndex.from_examples(pd.concat([base, _examples(10, prefix="n")]))  # 10 %
    last = _last(base)

    def retrains(policy: RetrainPolicy) -> bool:
        return decide_retrain(policy, current, CONFIG, last).retrain

    assert not retrains(RetrainPolicy(min_new_examples=20, min_new_fraction=0.05))
    assert not retrains(RetrainPolicy(min_new_examples=5, min_new_fraction=0.2))
    assert retrains(RetrainPolicy(min_new_examples=5, min_new_fraction=0.05))
    assert retrains(RetrainPolicy(min_new_examples=0, min_new_fraction=0.1))


def test_unchanged_examples_never_retrain_even_with_zero_thresholds() -> None:
    base = _examples(50)
    policy = RetrainPolicy(min_new_examples=0, min_new_fraction=0)

    decision = decide_retrain(policy, ExampleIndex.from_examples(base), CONFIG, _last(base))

    assert not decision.retrain


def test_forced_first_unrecorded_and_reconfigured_runs_retrain() -> None:
    base = _examples(100)
    index = ExampleIndex.from_examples(base)
    policy = RetrainPolicy()

    forced = decide_retrain(policy, index, CONFIG, _last(base), ["run tag supportloop/retrain=x"])
    first = decide_retrain(policy, index, CONFIG, None)
    unrecorded = decide_retrain(policy, index, CONFIG, TrainedVersion("2", None, None))
    reconfigured = decide_retrain(policy, index, "config-b", _last(base))

    assert forced.retrain and forced.reason == "forced: run tag supportloop/retrain=x"
    assert first.retrain and first.base_version is None
    assert unrecorded.retrain and "version 2 recorded no example index" in unrecorded.reason
    assert reconfigured.retrain and "configuration changed since version 3" in reconfigured.reason


def test_the_thresholds_come_from_the_environment(monkeypatch) -> None:
    monkeypatch.setenv("TRAIN_MIN_NEW_EXAMPLES", "500")
    monkeypatch.setenv("TRAIN_MIN_NEW_FRACTION", "0.2")

    assert RetrainPolicy() == RetrainPolicy(min_new_examples=500, min_new_fraction=0.2)


def test_the_index_survives_its_stored_form() -> None:
    index = ExampleIndex.from_examples(_examples(20))

    assert ExampleIndex.from_frame(index.to_frame()) == index


def test_absent_values_hash_alike_and_every_value_as_its_plain_text():
    """Row hashes see values as `plain` does: None, NaN, NA and "" are one absent value."""
    frame = pd.DataFrame(
        {
            "text": ['é \u2028 "q" \x00', "x", "", None, "t", 5],
            "context": [{"b": 1, "a": "é"}, None, "", '{"s": 1}', np.nan, pd.NA],
        }
    )
    plain_frame = frame.map(plain)
    assert plain_column(frame["context"]).tolist() == plain_frame["context"].tolist()
    hashes = row_hashes(frame, ["text", "context"])
    assert (hashes == row_hashes(plain_frame, ["text", "context"])).all()
    assert (
        row_hashes(frame.iloc[[5]], ["text"])[0] == row_hashes(frame.assign(text="5"), ["text"])[5]
    )
    assert len(set(hashes.tolist())) == len(frame)
    # Columns hashed once for the fingerprint and the index give the same row hashes.
    shared = column_hashes(frame, ["context", "text"])
    assert (row_hashes(frame, ["text", "context"], shared) == hashes).all()


def test_an_index_stored_in_the_older_form_reads_as_none_and_retrains() -> None:
    # Hex digests of encoded rows cannot be compared with row hashes: counting every example
    # as relabelled (or none) would be a guess, so that version counts as having no index.
    older = pd.DataFrame({"key": ["message:m-0"], "digest": ["0123456789abcdef"]})

    assert ExampleIndex.from_frame(older) is None
    decision = decide_retrain(
        RetrainPolicy(),
        ExampleIndex.from_examples(_examples(3)),
        CONFIG,
        TrainedVersion("4", ExampleIndex.from_frame(older), CONFIG),
    )
    assert decision.retrain and "older form" in decision.reason

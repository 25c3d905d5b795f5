"""The training fingerprint names the exact examples a model is fitted on, context included."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from pipelines.assets.training import TrainingConfig, training_fingerprint


def _examples(contexts: list[dict | None]) -> pd.DataFrame:
    """Equal answers in different conversations: same text, intent and split, own context."""
    return pd.DataFrame(
        {
            "message_id": [f"conv-{n}-2" for n in range(len(contexts))],
            "text": ["yes please"] * len(contexts),
            "context": [json.dumps(c, sort_keys=True) if c else None for c in contexts],
            "intent": ["confirm_block"] * len(contexts),
            "split": ["train"] * len(contexts),
        }
    )


LOST_CARD = {"session": {"previous_intents": ["report_lost_card"], "message_count": 2}}
REFUND = {"session": {"previous_intents": ["request_refund"], "message_count": 2}}


def test_a_change_of_context_alone_changes_the_fingerprint() -> None:
    config = TrainingConfig()
    before = training_fingerprint(_examples([LOST_CARD, LOST_CARD]), config)
    after = training_fingerprint(_examples([LOST_CARD, REFUND]), config)
    assert before != after


def test_equal_texts_of_different_messages_do_not_collapse() -> None:
    config = TrainingConfig()
    swapped = _examples([LOST_CARD, REFUND])
    swapped["message_id"] = swapped["message_id"].iloc[::-1].to_numpy()
    assert training_fingerprint(swapped, config) != training_fingerprint(
        _examples([LOST_CARD, REFUND]), config
    )


def test_unchanged_examples_in_another_order_keep_the_fingerprint() -> None:
    config = TrainingConfig()
    examples = _examples([LOST_CARD, REFUND, None])
    shuffled = examples.iloc[[2, 0, 1]].reset_index(drop=True)
    assert training_fingerprint(shuffled, config) == training_fingerprint(examples, config)


@pytest.mark.parametrize(
    ("variable", "value"),
    [
        ("TRAIN_FALLBACK_POLICY", "coverage"),
        ("TRAIN_FALLBACK_MIN_ANSWERED_ACCURACY", "0.9"),
        ("TRAIN_OOS_TARGET_RECALL", "0.7"),
    ],
)
def test_another_fallback_objective_changes_fingerprint_and_config_digest(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str
) -> None:
    # A version whose fallback was chosen for another objective is not reused, and the retrain
    # rule sees a changed configuration.
    config, examples = TrainingConfig(), _examples([LOST_CARD, REFUND])
    before = training_fingerprint(examples, config), config.digest()
    monkeypatch.setenv(variable, value)
    after = training_fingerprint(examples, config), config.digest()
    assert before[0] != after[0] and before[1] != after[1]

"""The gate's data-quality tests on training examples (models/data_quality.py, real Evidently)."""

from __future__ import annotations

import pandas as pd

from models.data_quality import check_training_data


def _turns(count: int) -> pd.DataFrame:
    """`count` customer turns of different conversations that say the same words."""
    return pd.DataFrame(
        {
            "message_id": [f"c{n}-2" for n in range(count)],
            "text": "yes please",
            "intent": ["block_card" if n % 2 else "order_card" for n in range(count)],
        }
    )


def test_equal_texts_of_different_messages_are_not_duplicates():
    assert check_training_data(_turns(200), 2000).ok


def test_the_same_message_twice_is_a_duplicate():
    turns = _turns(200)
    result = check_training_data(pd.concat([turns, turns.head(10)]), 2000)
    assert not result.ok
    assert any("Duplicated row count" in failure for failure in result.failed)

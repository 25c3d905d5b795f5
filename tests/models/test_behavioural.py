"""Behavioural suite and data quality on a real (small) model."""

from __future__ import annotations

import random

import pandas as pd

from models.behavioural import (
    Utterance,
    casing,
    load_functionality,
    punctuation,
    run_behavioural_suite,
    typo,
)
from models.data_quality import check_training_data
from models.gate import FUNCTIONALITY_PATH


def test_perturbations_change_surface_not_words():
    rng = random.Random(0)
    text = "My new card still hasn't arrived?"
    assert typo(text, rng) != text and len(typo(text, rng)) == len(text)
    assert casing(text, rng).lower() == text.lower()
    assert punctuation(text, rng).rstrip("?!. ") == "My new card still hasn't arrived"


def test_functionality_file_covers_every_banking77_intent(banking77_train):
    examples = load_functionality(FUNCTIONALITY_PATH)
    assert set(examples) == set(banking77_train["category"])


def test_suite_scores_a_keyword_model():
    def predict(utterances):  # a caricature: anything mentioning "card" is card_arrival
        texts = [u.text for u in utterances]
        return ["card_arrival" if "card" in t.lower() else "exchange_rate" for t in texts]

    functionality = {
        "card_arrival": ["Where is my card?", "no sign of it yet"],
        "exchange_rate": ["What rate do you use?"],
        "unknown_intent": ["ignored: the model does not know it"],
    }
    result = run_behavioural_suite(
        predict,
        ["card_arrival", "exchange_rate"],
        functionality,
        [Utterance("my card"), Utterance("the rate")],
    )
    assert result.functionality_cases == 3
    assert result.functionality == round(2 / 3, 4)
    assert result.invariance["casing"] == 1.0
    assert result.failures[0].text == "no sign of it yet"


def test_data_quality_flags_missing_and_empty_rows():
    clean = pd.DataFrame({"text": ["hello there", "where is my card"], "intent": ["a", "b"]})
    assert check_training_data(clean, 2000).ok
    dirty = pd.DataFrame({"text": ["", None, "ok"], "intent": ["a", "b", None]})
    result = check_training_data(dirty, 2000)
    assert not result.ok
    assert any("missing" in failure for failure in result.failed)
    assert any("Minimal value of 'length'" in failure for failure in result.failed)

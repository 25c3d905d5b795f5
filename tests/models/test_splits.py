import numpy as np

from models.splits import TEST, TRAIN, VALIDATION, assign_splits, text_bucket


def test_test_split_is_frozen_when_data_grows(banking77_train):
    first = banking77_train.head(3000)
    grown = banking77_train.head(6000)
    before = assign_splits(first["text"].tolist(), first["category"].tolist())
    after = assign_splits(grown["text"].tolist(), grown["category"].tolist())
    np.testing.assert_array_equal(before == TEST, after[:3000] == TEST)
    assert abs((after == TEST).mean() - 0.2) < 0.03


def test_split_ignores_case_and_spacing():
    assert text_bucket("Where is my card?") == text_bucket("  where IS my   card? ")


def test_validation_is_stratified_and_deterministic(banking77_train):
    texts, labels = banking77_train["text"].tolist(), banking77_train["category"].tolist()
    splits = assign_splits(texts, labels, validation_fraction=0.1, seed=3)
    np.testing.assert_array_equal(
        splits, assign_splits(texts, labels, validation_fraction=0.1, seed=3)
    )
    validation_labels = set(np.asarray(labels, dtype=object)[splits == VALIDATION])
    assert validation_labels == set(labels)
    assert abs((splits == VALIDATION).mean() - 0.1) < 0.02
    assert (splits == TRAIN).sum() > 0.65 * len(texts)

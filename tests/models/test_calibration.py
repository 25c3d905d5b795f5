"""Calibration measures and temperature scaling (models/calibration.py): no server, no store."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import skops.io
from scipy.special import softmax

from models.calibration import (
    TemperatureScaledClassifier,
    expected_calibration_error,
    fit_temperature,
    reliability_bins,
    scale_probabilities,
    top_confidence,
    with_temperature,
)
from models.candidates import resolve
from models.fallback import FallbackPolicy
from models.inference import IntentInference
from models.inputs import model_input
from models.registry import TRUSTED_SKOPS_TYPES
from models.splits import assign_splits


def test_perfectly_calibrated_confidences_have_an_ece_near_zero_and_over_confident_ones_do_not():
    rng = np.random.default_rng(0)
    confidence = rng.uniform(0.0, 1.0, 200_000)
    right_as_often_as_claimed = rng.uniform(0.0, 1.0, confidence.size) < confidence
    assert expected_calibration_error(confidence, right_as_often_as_claimed) < 0.01
    # Claims 95 % on every answer, right 70 % of the time: ECE is the 0.25 gap.
    claims = np.full(10_000, 0.95)
    right = rng.uniform(0.0, 1.0, claims.size) < 0.70
    assert expected_calibration_error(claims, right) == pytest.approx(0.25, abs=0.02)
    assert expected_calibration_error(np.array([]), np.array([], dtype=bool)) == 0.0


def test_reliability_bins_are_equal_width_upper_inclusive_and_keep_empty_bins():
    confidences = np.array([0.0, 0.2, 0.25, 0.5, 0.51, 1.0])
    correct = np.array([False, True, True, False, True, True])
    table = reliability_bins(confidences, correct, bins=4)
    assert [(b.lower, b.upper) for b in table] == [(0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1)]
    # 0 joins the first bin; 0.25 and 0.5 end theirs; the second bin stays listed, empty.
    assert [b.count for b in table] == [3, 1, 1, 1]
    assert table[0].mean_confidence == pytest.approx(0.15)
    assert table[0].accuracy == pytest.approx(2 / 3)
    assert table[3].gap == 0.0  # confidence 1.0, right
    expected = (3 * abs(2 / 3 - 0.15) + 1 * 0.5 + 1 * 0.49 + 0) / 6
    assert expected_calibration_error(confidences, correct, bins=4) == pytest.approx(expected)
    with pytest.raises(ValueError, match="one per row"):
        reliability_bins(confidences, correct[:3])
    with pytest.raises(ValueError, match=r"\[0, 1\]"):
        reliability_bins(np.array([1.5]), np.array([True]))


def _sampled(temperature: float, rows: int = 20_000, classes: int = 10, seed: int = 1):
    """Probabilities of an over-confident model and labels drawn as if its logits were / T."""
    rng = np.random.default_rng(seed)
    logits = rng.normal(0.0, 4.0, (rows, classes))
    truth = softmax(logits / temperature, axis=1)
    labels = np.array([rng.choice(classes, p=row) for row in truth])
    return softmax(logits, axis=1), labels


def test_the_temperature_fit_recovers_a_known_temperature_and_lowers_ece():
    probabilities, labels = _sampled(temperature=2.5)
    fitted = fit_temperature(probabilities, labels)
    assert fitted == pytest.approx(2.5, rel=0.05)
    correct = probabilities.argmax(axis=1) == labels
    scaled = scale_probabilities(probabilities, fitted)
    before = expected_calibration_error(top_confidence(probabilities), correct)
    after = expected_calibration_error(top_confidence(scaled), correct)
    assert before > 0.1 and after < 0.02
    # Scaling never changes which class is on top, so accuracy is untouched.
    assert (scaled.argmax(axis=1) == probabilities.argmax(axis=1)).all()
    assert fit_temperature(probabilities[:0], labels[:0]) == 1.0


def _banking_splits(small_slice: pd.DataFrame) -> dict[str, pd.DataFrame]:
    frame = small_slice.rename(columns={"category": "intent"}).assign(context="{}")
    frame["split"] = assign_splits(frame["text"].tolist(), frame["intent"].tolist())
    return {name: frame[frame["split"] == name] for name in ("train", "validation", "test")}


def test_on_banking77_temperature_scaling_fitted_on_validation_lowers_test_ece(small_slice):
    splits = _banking_splits(small_slice)
    train, validation, test = splits["train"], splits["validation"], splits["test"]
    pipeline = resolve(["tfidf_logreg"])[0].build()
    pipeline.fit(model_input(train), train["intent"].to_numpy())
    classes = list(pipeline.classes_)
    held_out = pipeline.predict_proba(model_input(validation))
    temperature = fit_temperature(held_out, np.array([classes.index(i) for i in validation.intent]))
    assert temperature != pytest.approx(1.0, abs=0.05)  # LogisticRegression(C=30) is not calibrated

    raw = pipeline.predict_proba(model_input(test))
    calibrated = with_temperature(pipeline, temperature).predict_proba(model_input(test))
    correct = pipeline.classes_[raw.argmax(axis=1)] == test["intent"].to_numpy()
    raw_ece = expected_calibration_error(top_confidence(raw), correct)
    calibrated_ece = expected_calibration_error(top_confidence(calibrated), correct)
    assert calibrated_ece < raw_ece


def test_a_temperature_scaled_pipeline_survives_skops_and_serves_its_calibrated_probabilities(
    small_slice, tmp_path
):
    splits = _banking_splits(small_slice)
    train, test = splits["train"], splits["test"]
    pipeline = resolve(["tfidf_logreg"])[0].build()
    # The wrapper in an unfitted pipeline: `fit` fits the classifier and keeps the temperature.
    pipeline.steps[-1] = ("clf", TemperatureScaledClassifier(pipeline.steps[-1][1], 3.0))
    pipeline.fit(model_input(train), train["intent"].to_numpy())
    expected = pipeline.predict_proba(model_input(test))
    raw = pipeline.named_steps["clf"].estimator_.predict_proba(
        pipeline[:-1].transform(model_input(test))
    )
    assert np.allclose(expected, scale_probabilities(raw, 3.0))

    skops.io.dump(pipeline, tmp_path / "model.skops")
    loaded = skops.io.load(tmp_path / "model.skops", trusted=TRUSTED_SKOPS_TYPES)
    inference = IntentInference(loaded, FallbackPolicy(threshold=0.0, margin=0.0))
    assert inference.uses_fast_path  # serving's path, through the wrapper
    assert np.allclose(inference.predict_proba(test["text"].tolist()), expected)
    assert list(loaded.predict(model_input(test))) == list(pipeline.predict(model_input(test)))

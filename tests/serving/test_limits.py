"""Request limits of a real `bentoml serve`: body size, field sizes, and how refusals are logged."""

from __future__ import annotations

import socket
import time

import httpx
import pytest

from tests.serving.conftest import FEEDBACK_KEY

pytestmark = pytest.mark.slow

# service_env: SERVING_MAX_BATCH_ITEMS=1000 and the default 2,000 characters a text.
BODY_LIMIT = 1000 * (2000 * 4 + 4096) + 65_536


def request_head(port: int, header: str) -> bytes:
    return (
        f"POST /predict HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
        f"Content-Type: application/json\r\n{header}\r\n\r\n"
    ).encode()


def read_response(sock: socket.socket) -> bytes:
    """Everything the server sends until it closes (it does, after a 413)."""
    data = b""
    while chunk := sock.recv(65_536):
        data += chunk
    return data


def test_a_body_announced_over_the_limit_is_refused_unread(service):
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(request_head(service.port, "Content-Length: 300000000"))
        answer = read_response(sock)  # not one byte of the 300 MB sent: the server did not wait
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"SERVING_MAX_BODY_BYTES" in answer


def test_a_chunked_body_is_counted_and_refused_past_the_limit(service):
    # One byte over the limit and no final chunk: the answer cannot wait for the body's end.
    # Nothing is sent past that byte, so the server reads all it was sent and closes cleanly.
    whole, rest = divmod(BODY_LIMIT + 1, 65_536)
    chunks = [b"x" * 65_536] * whole + ([b"x" * rest] if rest else [])
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(request_head(service.port, "Transfer-Encoding: chunked"))
        for chunk in chunks:
            sock.sendall(b"%x\r\n%s\r\n" % (len(chunk), chunk))
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413"), answer[:300]
    assert b"SERVING_MAX_BODY_BYTES" in answer


def test_a_chunked_body_within_the_limit_is_served(service):
    body = b'{"text": "where is my new card"}'
    with socket.create_connection(("127.0.0.1", service.port), timeout=30) as sock:
        sock.sendall(request_head(service.port, "Transfer-Encoding: chunked\r\nConnection: close"))
        sock.sendall(b"%x\r\n%s\r\n0\r\n\r\n" % (len(body), body))
        answer = read_response(sock)
    assert answer.startswith(b"HTTP/1.1 200"), answer[:300]
    assert b'"intent"' in answer


MEGABYTE = "x" * 1_000_000
DEEP = {"a": {"b": {"c": {"d": 1}}}}
PREDICT = {"text": "where is my card"}
FEEDBACK = {"text": "where is my card", "true_intent": "card_arrival"}


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/predict", PREDICT | {"user_id": MEGABYTE}, ["user_id"]),
        ("/predict", PREDICT | {"session_id": MEGABYTE}, ["session_id"]),
        ("/predict", PREDICT | {"context": DEEP}, ["context"]),
        ("/predict", PREDICT | {"context": {"note": MEGABYTE}}, ["context"]),
        ("/predict", PREDICT | {"context": {"n": 10**400}}, ["context"]),
        ("/feedback", FEEDBACK | {"predicted_intent": MEGABYTE}, ["predicted_intent"]),
        ("/feedback", FEEDBACK | {"true_intent": "   "}, ["true_intent"]),
        ("/feedback", FEEDBACK | {"message_id": MEGABYTE}, ["message_id"]),
        ("/feedback", FEEDBACK | {"user_id": MEGABYTE}, ["user_id"]),
        ("/feedback", FEEDBACK | {"session_id": MEGABYTE}, ["session_id"]),
        ("/batch_predict", {"items": [PREDICT, {"text": MEGABYTE}]}, ["items", 1, "text"]),
        ("/batch_predict", {"items": [PREDICT | {"context": DEEP}]}, ["items", 0, "context"]),
    ],
)
def test_every_field_has_a_limit(service, path, body, field):
    response = httpx.post(
        f"{service.url}{path}", json=body, headers={"x-api-key": FEEDBACK_KEY}, timeout=30
    )
    assert response.status_code == 400, response.text[:500]
    [problem] = response.json()["detail"]
    assert problem["loc"] == field and problem["msg"], problem


@pytest.mark.parametrize(
    ("path", "body", "field"),
    [
        ("/predict", PREDICT | {"text": "where is\x00 my card"}, ["text"]),
        ("/predict", PREDICT | {"user_id": "u\x00"}, ["user_id"]),
        ("/predict", PREDICT | {"session_id": "\x00"}, ["session_id"]),
        ("/feedback", FEEDBACK | {"text": "where is my card\x00"}, ["text"]),
        ("/feedback", FEEDBACK | {"true_intent": "card\x00arrival"}, ["true_intent"]),
        ("/feedback", FEEDBACK | {"predicted_intent": "\x00x"}, ["predicted_intent"]),
        ("/feedback", FEEDBACK | {"message_id": "m\x00"}, ["message_id"]),
        ("/feedback", FEEDBACK | {"user_id": "u\x00"}, ["user_id"]),
        ("/feedback", FEEDBACK | {"session_id": "s\x00"}, ["session_id"]),
        ("/batch_predict", {"items": [PREDICT, {"text": "a\x00"}]}, ["items", 1, "text"]),
    ],
)
def test_a_nul_character_is_refused_naming_the_field(service, path, body, field):
    # PostgreSQL cannot store U+0000: refused up front on every store, never stored or a 500.
    response = httpx.post(
        f"{service.url}{path}", json=body, headers={"x-api-key": FEEDBACK_KEY}, timeout=30
    )
    assert response.status_code == 400, response.text[:500]
    [problem] = response.json()["detail"]
    assert problem["loc"] == field and "NUL" in problem["msg"], problem


def test_a_bad_request_is_logged_as_one_line_without_traceback(service):
    start = service.log.stat().st_size
    response = httpx.post(f"{service.url}/predict", json={"text": 42}, timeout=30)
    assert response.status_code == 400
    deadline = time.monotonic() + 120  # the worker's log reaches the file asynchronously
    while "/predict [POST]" not in (logged := service.log.read_bytes()[start:].decode()):
        assert time.monotonic() < deadline, logged
        time.sleep(0.2)
    time.sleep(0.5)  # a traceback follows its first line
    logged = service.log.read_bytes()[start:].decode()
    assert "Traceback" not in logged and "[ERROR]" not in logged, logged
    assert "[INFO]" in logged and "/predict [POST] rejected: text" in logged, logged

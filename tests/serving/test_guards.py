"""A client that stalls its request body gets a 408 naming the limit, not BentoML's 504.

The 504 came from BentoML's 30 s request timeout: a server error (alerts, SLOs) that any client
could cause by announcing a body and not sending it.
"""

from __future__ import annotations

import json
import socket

import pytest

from tests.serving.conftest import ServiceProcess, service_env


@pytest.fixture(scope="module")
def impatient_service(serving_registry):
    process = ServiceProcess(
        service_env(serving_registry, "stalled-bodies.db", SERVING_BODY_TIMEOUT_S="1")
    )
    process.start()
    yield process
    process.stop()


def _answer(port: int, request: bytes) -> tuple[int, dict]:
    """Send `request`, never the rest of its body; the status and JSON body of the answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=60) as client:
        client.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data or not data.rstrip().endswith(b"}"):
            chunk = client.recv(4096)
            if not chunk:
                break
            data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    return int(head.split()[1]), json.loads(body)


@pytest.mark.parametrize(
    "request_head",
    [
        b"Content-Length: 100\r\n\r\n{",
        b"Transfer-Encoding: chunked\r\n\r\n1\r\n{\r\n",
    ],
    ids=["content-length", "chunked"],
)
def test_a_stalled_body_is_a_408(impatient_service, request_head):
    status, body = _answer(
        impatient_service.port,
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n" + request_head,
    )
    assert status == 408
    assert "SERVING_BODY_TIMEOUT_S" in body["error"]


def test_a_body_sent_in_time_is_served(impatient_service):
    payload = b'{"text": "my card has not arrived"}'
    status, body = _answer(
        impatient_service.port,
        b"POST /predict HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Connection: close\r\nContent-Length: %d\r\n\r\n%s" % (len(payload), payload),
    )
    assert status == 200
    assert body["intent"]

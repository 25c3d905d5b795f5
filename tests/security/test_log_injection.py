"""Log injection through BentoML's access log: real `bentoml serve` with SERVING_ACCESS_LOG=true.

The access log writes the path percent-decoded: `%0A` started a forged line of the attacker's
choosing and `%1B[` put terminal escapes in the log. Each request stays one line, escaped.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.serving.conftest import ServiceProcess, service_env

pytestmark = pytest.mark.slow
FORGED = "2026-12-01T00:00:00+0000 [INFO] [cli] FORGED-LINE"


@pytest.fixture(scope="module")
def logged_service(serving_registry: dict) -> Iterator[ServiceProcess]:
    """A service writing its access log."""
    process = ServiceProcess(
        service_env(serving_registry, "access-log.db", SERVING_ACCESS_LOG="true")
    )
    process.start()
    yield process
    process.stop()


def _get(port: int, path: str) -> bytes:
    """GET `path` as raw bytes on the wire (no client library re-encodes it)."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as connection:
        request = f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"
        connection.sendall(request.encode())
        return connection.recv(4096)


def _logged(log: Path, marker: str, wait_s: float = 30.0) -> str:
    deadline = time.monotonic() + wait_s
    while marker not in (text := log.read_text(errors="replace")):
        assert time.monotonic() < deadline, f"{marker!r} never reached the access log"
        time.sleep(0.2)
    return text


def test_a_path_cannot_forge_a_log_line_or_a_terminal_escape(
    logged_service: ServiceProcess,
) -> None:
    marker = f"probe-{time.time_ns()}"
    encoded = FORGED.replace(" ", "%20").replace("[", "%5B").replace("]", "%5D")
    path = f"/predict%0A{marker}%0A{encoded}%1B%5B31m"  # in the path: it is decoded
    answer = _get(logged_service.port, path)
    assert answer.startswith(b"HTTP/1.1 ")
    assert logged_service.log is not None
    text = _logged(logged_service.log, marker)
    lines = text.splitlines()
    assert not [line for line in lines if line.startswith(FORGED)], "a forged line was written"
    assert not [line for line in lines if line.startswith(marker)], "the path broke the line"
    assert "\x1b" not in text, "a terminal escape reached the log"
    escaped = [line for line in lines if marker in line and "path=" in line]
    assert escaped and "\\n" in escaped[0] and "\\x1b" in escaped[0]

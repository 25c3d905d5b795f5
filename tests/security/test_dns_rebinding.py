"""Dev login (CHAT_DEV_LOGIN=true, loopback only) against DNS rebinding: real `bentoml serve`.

A page on attacker.example that rebinds its name to 127.0.0.1 calls the demo's dev login as a
same-origin page: it got an agent token (every conversation in the store). Its requests carry
its own name in the Host header; only requests to a loopback host get a token.
"""

from __future__ import annotations

import httpx
import pytest

from tests.serving.conftest import ServiceProcess

pytestmark = pytest.mark.slow
AGENT = {"user_id": "rebound-agent", "role": "agent"}


@pytest.mark.parametrize(
    "host", ["attacker.example", "attacker.example:{port}", "127.0.0.1.nip.io"]
)
def test_dev_login_refuses_a_request_addressed_to_another_name(
    dev_login_service: ServiceProcess, host: str
) -> None:
    headers = {"host": host.format(port=dev_login_service.port)}
    answer = httpx.post(
        f"{dev_login_service.url}/chat/dev/token", json=AGENT, headers=headers, timeout=30
    )
    assert answer.status_code == 403, answer.text
    assert "token" not in answer.json()


@pytest.mark.parametrize("host", ["127.0.0.1:{port}", "localhost:{port}", "[::1]:{port}"])
def test_dev_login_still_serves_loopback_names(
    dev_login_service: ServiceProcess, host: str
) -> None:
    headers = {"host": host.format(port=dev_login_service.port)}
    answer = httpx.post(
        f"{dev_login_service.url}/chat/dev/token", json=AGENT, headers=headers, timeout=30
    )
    assert answer.status_code == 200, answer.text
    assert answer.json()["role"] == "agent"

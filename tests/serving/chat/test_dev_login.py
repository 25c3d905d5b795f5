"""Dev login is off unless asked for and only ever on loopback; the local chat secret is private.

The Makefile is run for real (GNU make in a temp directory, umask 022 like a fresh shell); the
services are real `bentoml serve` processes.
"""

from __future__ import annotations

import json
import os
import socket
import stat
import subprocess
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import expect
from websockets.sync.client import connect

from serving.chat.exposure import DevLoginExposed, is_loopback, refuse_exposed_dev_login
from serving.launch import is_ready
from serving.process_tree import ServerStartError, wait_ready
from tests.serving.chat.conftest import unique_user
from tests.serving.conftest import ServiceProcess, service_env

MAKEFILE = Path(__file__).resolve().parents[3] / "Makefile"


def make(directory: Path, *args: str, **env: str) -> str:
    """GNU make on the repository's Makefile with `directory` as its working directory."""
    clean = {
        key: value
        for key, value in os.environ.items()
        if key not in {"CHAT_JWT_SECRET", "CHAT_DEV_LOGIN", "MAKEFLAGS", "MAKELEVEL", "MFLAGS"}
    }
    command = 'umask 022 && exec make -s -C "$0" -f "$1" "${@:2}"'
    result = subprocess.run(
        ["bash", "-c", command, str(directory), str(MAKEFILE), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=clean | env,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


# A target that only needs the exported variables: running it makes the secret like any target.
PROBE = ["--eval", "probe: ; @echo probed", "probe"]


def test_make_creates_the_chat_secret_readable_by_its_owner_only(tmp_path):
    assert "probed" in make(tmp_path, *PROBE)
    secret = tmp_path / ".chat-secret"
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert len(secret.read_text().strip()) >= 32


def test_make_tightens_an_existing_chat_secret_and_keeps_it(tmp_path):
    secret = tmp_path / ".chat-secret"
    secret.write_text("an-older-secret-made-with-the-default-umask-0644\n")
    secret.chmod(0o644)
    make(tmp_path, *PROBE)
    assert stat.S_IMODE(secret.stat().st_mode) == 0o600
    assert secret.read_text() == "an-older-secret-made-with-the-default-umask-0644\n"


def test_make_serve_turns_dev_login_on_only_when_asked(tmp_path):
    for prerequisite in ("pyproject.toml", "requirements.lock"):  # of the install step, not run
        (tmp_path / prerequisite).touch()
    default = make(tmp_path, "-n", "serve")
    assert "CHAT_DEV_LOGIN=false" in default and "CHAT_DEV_LOGIN=true" not in default
    assert "CHAT_DEV_LOGIN=true" in make(tmp_path, "-n", "serve", "CHAT_DEV_LOGIN=true")
    assert "CHAT_DEV_LOGIN=true" in make(tmp_path, "-n", "serve", CHAT_DEV_LOGIN="true")


@pytest.mark.parametrize(
    ("host", "loopback"),
    [
        ("127.0.0.1", True),
        ("127.8.9.10", True),
        ("::1", True),
        ("::ffff:127.0.0.1", True),
        ("localhost", True),
        ("0.0.0.0", False),
        ("::", False),
        ("192.168.1.20", False),
        ("example.com", False),
    ],
)
def test_loopback_addresses(host, loopback):
    assert is_loopback(host) is loopback


def test_dev_login_fails_closed_when_the_address_is_unknown():
    refuse_exposed_dev_login(False)  # off: nothing to check
    with pytest.raises(DevLoginExposed, match="cannot be determined"):
        refuse_exposed_dev_login(True)  # pytest is not `bentoml serve`


def test_dev_login_is_refused_in_a_process_listening_on_every_interface():
    with socket.socket() as listener:
        listener.bind(("0.0.0.0", 0))
        listener.listen()
        with pytest.raises(DevLoginExposed, match=r"CHAT_DEV_LOGIN=true.*0\.0\.0\.0.*--host"):
            refuse_exposed_dev_login(True)


@pytest.mark.slow
def test_bentoml_serve_on_all_interfaces_with_dev_login_exits_with_the_reason(serving_registry):
    process = ServiceProcess(
        service_env(serving_registry, "dev-login-exposed.db", CHAT_DEV_LOGIN="true"),
        host="0.0.0.0",
    )
    process.launch()
    assert process.process is not None and process.log is not None
    launched = process.process

    def never_ready() -> bool:
        # A cheap probe (urllib): it is polled every 0.1 s beside the starting server.
        assert not is_ready(process.url), "the service started with dev login on 0.0.0.0"
        return False

    try:
        # No wall-clock deadline: a loaded machine only makes the refusal slower to come.
        with pytest.raises(ServerStartError, match="exited"):
            wait_ready(launched, never_ready, process.log)
        assert launched.returncode != 0
    finally:
        process.stop(kill=True)
    log = process.log.read_text()
    assert "CHAT_DEV_LOGIN=true while the service is bound to 0.0.0.0" in log
    assert "--host 127.0.0.1" in log


@pytest.mark.slow
def test_dev_login_on_loopback_serves_tokens_and_the_page_uses_it(
    dev_login_service, browser, screenshot_dir
):
    url = dev_login_service.url
    assert httpx.get(f"{url}/chat/dev/login").json() == {"enabled": True}
    user = unique_user("demo")
    answer = httpx.post(f"{url}/chat/dev/token", json={"user_id": user, "role": "customer"})
    assert answer.status_code == 200

    # The sync client: Playwright's sync API holds this thread's event loop (no asyncio.run).
    with connect(f"{dev_login_service.ws_url}?token={answer.json()['token']}") as socket:
        welcome = json.loads(socket.recv(timeout=10))
    assert welcome["type"] == "welcome" and welcome["data"]["user_id"] == user

    context = browser.new_context(viewport={"width": 1100, "height": 600})
    page = context.new_page()
    dialogs: list[str] = []
    page.on("dialog", lambda dialog: (dialogs.append(dialog.message), dialog.dismiss()))
    page.goto(f"{url}/chat/")
    name = page.get_by_label("Your customer name (local dev login)")  # a form, not a prompt
    expect(name).to_be_focused(timeout=20_000)
    expect(page.locator("#status")).to_have_text("signed out")
    name.fill(unique_user("demo-page"))
    page.screenshot(path=str(screenshot_dir / "dev_login.png"))
    name.press("Enter")
    expect(page.locator("#status")).to_have_text("online", timeout=20_000)
    assert page.evaluate("localStorage.getItem('chat:customer:token')")
    assert dialogs == []
    context.close()


@pytest.mark.slow
def test_dev_login_is_off_by_default(service):
    assert httpx.get(f"{service.url}/chat/dev/login").json() == {"enabled": False}
    answer = httpx.post(f"{service.url}/chat/dev/token", json={"user_id": "x", "role": "agent"})
    assert answer.status_code == 404 and "CHAT_DEV_LOGIN" in answer.text

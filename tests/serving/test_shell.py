"""`make shell` (serving/shell.py) against a real `bentoml serve`, lines fed through its stdin."""

from __future__ import annotations

import os
import socket
import subprocess
import sys

import httpx
import yaml

from serving import shell
from serving.chat.bot import HANDOFF, REPHRASE
from tests.entry_points import run_main
from tests.serving.conftest import REPO_ROOT

RESPONSES = yaml.safe_load((REPO_ROOT / "data" / "responses.yaml").read_text(encoding="utf-8"))


def run_shell(url: str, stdin: str) -> subprocess.CompletedProcess[str]:
    """`python -m serving.shell --url URL` with `stdin` typed into it."""
    return subprocess.run(
        [sys.executable, "-m", "serving.shell", "--url", url],
        cwd=REPO_ROOT,
        input=stdin,
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )


def field(block: list[str], name: str) -> str:
    """The value of `  name  value` in one answer's lines."""
    return next(line.split(name, 1)[1].strip() for line in block if line.startswith(f"  {name}"))


def test_each_line_gets_intent_alternatives_fallback_and_the_bot_reply(service):
    text = "I am still waiting for my new card to arrive"
    expected = httpx.post(f"{service.url}/predict", json={"text": text}, timeout=30).json()
    too_long = "x" * 2001  # over SERVING_MAX_TEXT_CHARS: refused by the service, the shell goes on
    done = run_shell(service.url, f"{too_long}\n\n{text}\n/quit\nnever sent\n")

    assert done.returncode == 0, done.stderr
    lines = done.stdout.splitlines()
    assert lines[0].startswith(f"intent-classifier v{expected['model']['version']} at ")
    assert sum(line.startswith("  intent ") for line in lines) == 1  # nothing after /quit
    assert field(lines, "intent") == f"{expected['intent']}  {expected['confidence']:.3f}"
    top = field(lines, "top").split("  ")
    assert len(top) == len(expected["top_k"])
    assert top[0] == f"{expected['top_k'][0]['intent']} {expected['top_k'][0]['confidence']:.3f}"
    assert field(lines, "fallback") == ("yes (not sure)" if expected["fallback"] else "no")
    bot = field(lines, "bot")
    key = REPHRASE if expected["fallback"] else expected["intent"]
    assert bot in RESPONSES[key] or bot.startswith(RESPONSES[HANDOFF][0])

    [error] = done.stderr.splitlines()
    assert error.startswith("error: the service answered 400: ")


def test_end_of_input_ends_the_shell(service):
    done = run_shell(service.url, "how do I activate my card\n")  # then Ctrl-D (stdin closed)
    assert done.returncode == 0, done.stderr
    assert sum(line.startswith("  intent ") for line in done.stdout.splitlines()) == 1


def test_no_service_at_the_url_is_one_line_and_exit_2(monkeypatch, capsys):
    # The shell's main in this process: the two tests above run the real `python -m`.
    with socket.socket() as sock:  # bound, never listening: nothing answers
        sock.bind(("127.0.0.1", 0))
        url = f"http://127.0.0.1:{sock.getsockname()[1]}"
        done = run_main(monkeypatch, capsys, shell.main, ["--url", url], os.environ)
    assert done.returncode == 2
    assert done.stdout == ""
    [line] = done.stderr.splitlines()
    assert line.startswith(f"error: no intent service answers at {url} (")
    assert line.endswith("start it with `make serve` or set SERVICE_URL")

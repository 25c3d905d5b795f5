"""Stopping a server tree whose worker runs in a session of its own, as BentoML's do."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest

from serving.process_tree import (
    ServerStartError,
    port_listeners,
    running,
    stop_tree,
    tree,
    wait_ready,
)
from tests.serving.conftest import free_port

WORKER = (
    "import socket, sys, time\n"
    "s = socket.socket()\n"
    "s.bind(('127.0.0.1', int(sys.argv[1])))\n"
    "s.listen()\n"
    "time.sleep(600)\n"
)
# Like circus: the worker gets setsid(), a session and process group of its own.
ARBITER = (
    "import subprocess, sys, time\n"
    "subprocess.Popen([sys.executable, '-c', sys.argv[1], sys.argv[2]], start_new_session=True)\n"
    "time.sleep(600)\n"
)


def _server(port: int) -> subprocess.Popen:
    process = subprocess.Popen(
        [sys.executable, "-c", ARBITER, WORKER, str(port)], start_new_session=True
    )
    wait_ready(process, lambda: bool(port_listeners(port)), poll_s=0.05)
    return process


def test_a_group_kill_leaves_the_worker_listening_and_stop_tree_ends_it():
    port = free_port()
    process = _server(port)
    members = tree(process.pid)
    assert len(members) == 2
    os.killpg(process.pid, signal.SIGKILL)  # what the fixtures did before
    process.wait(timeout=10)
    assert running(members) == members[1:] and port_listeners(port)
    stopped = stop_tree(process, port=port, known=members)
    assert stopped.pids == {members[1].pid} and not running(members)
    assert not port_listeners(port)


@pytest.mark.parametrize("kill", [True, False])
def test_stop_tree_stops_every_process_and_frees_the_port(kill):
    port = free_port()
    process = _server(port)
    members = tree(process.pid)
    stopped = stop_tree(process, kill=kill, port=port)
    assert stopped.pids == {p.pid for p in members} and not running(members)
    assert stopped.returncode == (-signal.SIGKILL if kill else -signal.SIGTERM)
    assert not port_listeners(port)


def test_wait_ready_fails_when_the_server_exits():
    process = subprocess.Popen([sys.executable, "-c", "raise SystemExit(3)"])
    with pytest.raises(ServerStartError, match="exited with 3"):
        wait_ready(process, lambda: False, poll_s=0.05)


def test_wait_ready_fails_when_the_server_makes_no_progress(tmp_path):
    process = subprocess.Popen(["sleep", "600"])
    try:
        with pytest.raises(ServerStartError, match="no progress"):
            wait_ready(process, lambda: False, tmp_path / "silent.log", stall_s=1, poll_s=0.05)
    finally:
        stop_tree(process, kill=True)

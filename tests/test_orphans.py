"""The end-of-session check finds what the suite started and left, and nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import time
from pathlib import Path

import psutil

from serving.process_tree import port_listeners
from tests import orphans
from tests.serving.conftest import free_port


def _redis(directory: Path, *extra: str) -> tuple[list[str], int]:
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: `make test` installs it (Debian package redis-server)"
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", ""]
    return [*command, "--dir", str(directory), *extra], port


def test_a_daemon_whose_parent_exited_is_reported_and_killed(tmp_path):
    # Like a BentoML worker whose arbiter was killed: its parent is gone.
    session = orphans.begin(os.getpid())  # the session fixture made pytest a subreaper
    pidfile = tmp_path / "redis.pid"
    command, port = _redis(tmp_path, "--daemonize", "yes", "--pidfile", str(pidfile))
    subprocess.run(command, check=True)
    while not (pidfile.is_file() and pidfile.read_text().strip() and port_listeners(port)):
        time.sleep(0.1)
    daemon = psutil.Process(int(pidfile.read_text()))
    assert daemon.pid in {p.pid for p in orphans.leftovers(session)}
    report = orphans.finish(session, grace_s=0)
    assert [entry.pid for entry in report] == [daemon.pid] and "redis-server" in str(report[0])
    assert not port_listeners(port)


def test_processes_outside_the_session_are_not_counted(tmp_path):
    other_session = subprocess.Popen(["sleep", "600"])  # stands in for another engineer's pytest
    command, _ = _redis(tmp_path)
    before = subprocess.Popen(command, stdout=subprocess.DEVNULL)
    try:
        ours = orphans.begin(os.getpid())
        theirs = orphans.begin(other_session.pid)
        after = subprocess.Popen(_redis(tmp_path)[0], stdout=subprocess.DEVNULL)
        try:
            found = {p.pid for p in orphans.leftovers(ours)}
            assert after.pid in found and before.pid not in found
            assert not orphans.leftovers(theirs)
        finally:
            after.kill()
            after.wait(timeout=10)
    finally:
        for process in (before, other_session):
            process.kill()
            process.wait(timeout=10)

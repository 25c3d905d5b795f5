"""The end-of-session check finds what the suite started and left, and nothing else."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import psutil

from serving.process_tree import port_listeners
from tests import orphans
from tests.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]


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


LEAKS_A_SERVER = """
import shutil
import subprocess
from pathlib import Path

from tests.ports import free_port


def test_leaves_a_redis_running(tmp_path):
    port = free_port()
    Path({port_file!r}).write_text(str(port))
    command = [shutil.which("redis-server"), "--port", str(port), "--bind", "127.0.0.1"]
    command += ["--save", "", "--daemonize", "yes", "--dir", str(tmp_path)]
    subprocess.run(command, check=True)
"""


def test_a_server_left_by_an_xdist_worker_fails_the_run(tmp_path):
    # `make test` runs xdist workers: each is a pytest process of its own, its own subreaper,
    # and checks its own leftovers. The file that leaks may run on either worker.
    port_file = tmp_path / "port"
    (tmp_path / "test_leaks.py").write_text(LEAKS_A_SERVER.format(port_file=str(port_file)))
    (tmp_path / "test_clean.py").write_text("def test_nothing():\n    pass\n")
    plugins = ["-p", "no:cacheprovider", "-p", "tests.orphans"]  # the suite's own fixture
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", *plugins, "-n", "2", "--dist", "loadfile", tmp_path],
        cwd=REPO_ROOT,
        # The leak is deliberate: no grace for it to stop on its own (15 s idle otherwise).
        env=os.environ | {"PYTHONPATH": str(REPO_ROOT), orphans.LEFTOVER_GRACE_ENV: "1"},
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = done.stdout + done.stderr
    port = int(port_file.read_text())
    assert done.returncode == 1, output
    assert "processes the test session left running (now killed)" in output, output
    assert f"redis-server 127.0.0.1:{port}" in output and "[gw" in output, output
    assert "2 passed, 1 error" in output, output
    assert not port_listeners(port)

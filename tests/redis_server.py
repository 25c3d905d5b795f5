"""A real `redis-server` for tests: a free loopback port, no persistence, stopped with its tree."""

from __future__ import annotations

import contextlib
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import redis

from serving.process_tree import stop_tree
from tests.ports import free_port

# Generous: under pytest-xdist the other worker may be busy starting servers of its own.
READY_TIMEOUT_S = 120.0


@contextlib.contextmanager
def running_redis(directory: Path) -> Iterator[str]:
    """Start redis-server in `directory`, yield its URL once it answers PING, then stop it."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: `make test` installs it (Debian package redis-server)"
    port = free_port()
    process = subprocess.Popen(
        [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(directory)],
        stdout=subprocess.DEVNULL,
    )
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.1)
        yield url
    finally:
        stop_tree(process, port=port)

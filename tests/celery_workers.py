"""A real Redis broker and real Celery workers of the pipeline (pipelines/celery_worker.py).

Each worker is `celery -A pipelines.celery_worker worker` in a session of its own, so stopping it
stops its pool process too; `stop()` waits for every process of the tree and kills what is left.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass
from pathlib import Path

import psutil
import redis

from pipelines.executors import CELERY_QUEUE
from tests.postgres import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
CELERY = Path(sys.executable).with_name("celery")
START_TIMEOUT_S = 120


@dataclass(frozen=True)
class Worker:
    """One Celery worker: its main process and where it logs."""

    name: str
    process: subprocess.Popen
    log: Path

    def pool_pids(self) -> list[int]:
        """The pids of the worker's pool processes (the ones executing steps)."""
        try:
            return [child.pid for child in psutil.Process(self.process.pid).children()]
        except psutil.NoSuchProcess:
            return []

    def ready(self) -> bool:
        """True once the worker logged that it takes tasks."""
        return self.log.exists() and " ready." in self.log.read_text(errors="replace")


def stop_tree(process: subprocess.Popen, grace_s: float = 30.0) -> None:
    """SIGTERM the process's session (warm shutdown), then SIGKILL whatever is left of it."""
    try:
        tree = [psutil.Process(process.pid), *psutil.Process(process.pid).children(recursive=True)]
    except psutil.NoSuchProcess:
        tree = []
    with suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGTERM)
    _, alive = psutil.wait_procs(tree, timeout=grace_s)
    for leftover in alive:
        leftover.kill()
    psutil.wait_procs(alive, timeout=10)
    if process.poll() is None:
        process.kill()
    process.wait(timeout=10)


@contextmanager
def running_redis(root: Path) -> Iterator[str]:
    """`redis-server` on a free loopback port, no persistence; yields its URL."""
    binary = shutil.which("redis-server")
    assert binary, "redis-server is missing: `make test` installs it (Debian package redis-server)"
    port = free_port()
    command = [binary, "--port", str(port), "--bind", "127.0.0.1", "--save", "", "--dir", str(root)]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, start_new_session=True)
    url = f"redis://127.0.0.1:{port}/0"
    try:
        deadline = time.monotonic() + 120  # generous: the other xdist worker may be busy
        while True:
            try:
                redis.Redis.from_url(url).ping()
                break
            except redis.ConnectionError:
                assert time.monotonic() < deadline, "redis-server did not start"
                time.sleep(0.1)
        yield url
    finally:
        stop_tree(process)


def start_worker(name: str, env: Mapping[str, str], root: Path) -> Worker:
    """One pipeline worker with one pool process, as deploy/dagster/dagster.yaml describes."""
    log = root / f"{name}.log"
    command = [str(CELERY), "-A", "pipelines.celery_worker", "worker", "-Q", CELERY_QUEUE]
    command += ["--concurrency", "1", "--prefetch-multiplier", "1", "-n", f"{name}@%h"]
    command += ["--without-mingle", "--without-gossip", "--loglevel", "INFO"]
    with log.open("w") as handle:
        process = subprocess.Popen(
            command,
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return Worker(name, process, log)


@contextmanager
def running_workers(count: int, env: Mapping[str, str], root: Path) -> Iterator[list[Worker]]:
    """`count` workers, ready to take tasks; all stopped on exit."""
    workers = [start_worker(f"pipeline-worker-{index}", env, root) for index in range(count)]
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while not all(worker.ready() for worker in workers):
            for worker in workers:
                assert worker.process.poll() is None, worker.log.read_text(errors="replace")[-3000:]
            assert time.monotonic() < deadline, "Celery workers did not start"
            time.sleep(0.5)
        yield workers
    finally:
        for worker in workers:
            stop_tree(worker.process)

"""A real registry with a champion, and a real `bentoml serve` process on a free port."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import psutil
import pytest

from models.registry import IntentRegistry, RegistryConfig
from serving.launch import is_ready
from serving.process_tree import ServerStartError, StoppedTree, stop_tree, tree, wait_ready
from tests.conftest import register_version
from tests.ports import free_port
from tests.registry_template import registry_copy

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "test-admin-key-0123456789"
CHAT_SECRET = "test-chat-secret-that-is-long-enough-for-hs256"
FEEDBACK_KEY_NAME, FEEDBACK_KEY = "chat-backend", "test-feedback-key-0123456789"


@dataclass
class ServiceProcess:
    """`bentoml serve serving.service:IntentService` with its own environment."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    process: subprocess.Popen | None = None
    log: Path | None = None
    # The arbiter and its workers once ready: after a crash the orphans are found through these.
    started: list[psutil.Process] = field(default_factory=list)

    @property
    def url(self) -> str:
        """Base URL."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def ws_url(self) -> str:
        """The chat WebSocket URL."""
        return f"ws://127.0.0.1:{self.port}/chat/ws"

    def start(self) -> None:
        """Start and wait until /readyz answers 200."""
        self.launch()
        self.wait_ready()

    def launch(self) -> None:
        """Start the process without waiting."""
        self.log = Path(self.env["SERVING_TEST_LOG_DIR"]) / f"serve-{time.time_ns()}.log"
        handle = self.log.open("w")
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("bentoml")),
                "serve",
                "serving.service:IntentService",
                "--host",
                self.host,
                "--port",
                str(self.port),
            ],
            cwd=REPO_ROOT,
            env=self.env,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )

    def wait_ready(self) -> None:
        """Wait until /readyz answers 200, as long as the server makes progress."""
        assert self.process is not None and self.log is not None
        try:
            # `is_ready` (urllib, ~0.1 ms of CPU) rather than `httpx.get`, which builds an SSL
            # context (~60 ms) per call: polled every 0.1 s, that CPU went missing from the start.
            wait_ready(self.process, lambda: is_ready(self.url), self.log)
        except ServerStartError as failure:
            self.stop(kill=True)
            log = self.log.read_text()[-3000:]
            raise RuntimeError(f"bentoml serve: {failure}:\n{log}") from failure
        self.started = tree(self.process.pid)

    @property
    def pids(self) -> frozenset[int]:
        """The arbiter's and workers' PIDs when the server became ready."""
        return frozenset(process.pid for process in self.started)

    def served(self, path: str, wait_s: float = 30.0) -> bool:
        """Whether this start's own log records a request to `path` (needs SERVING_ACCESS_LOG).

        BentoML writes the access line just after the response has gone out: allow it a moment.
        """
        deadline = time.monotonic() + wait_s
        while self.log is None or f"path={path}" not in self.log.read_text():
            if time.monotonic() > deadline:
                return False
            time.sleep(0.2)
        return True

    def stop(self, kill: bool = False) -> StoppedTree | None:
        """Stop the server and every worker (SIGKILL when `kill`); verify the port is free.

        Raises when any process of the tree survives or the port is still listened on.
        """
        if self.process is None:
            return None
        stopped = stop_tree(self.process, kill=kill, port=self.port, known=self.started)
        self.started = []
        return stopped


@pytest.fixture(scope="session")
def serving_registry(tmp_path_factory, small_slice):
    """An MLflow registry (SQLite) whose champion is a model trained on a Banking77 slice.

    Built once a run and copied to each worker (tests/registry_template.py).
    """

    def build(folder: Path) -> dict[str, str]:
        registry = IntentRegistry(RegistryConfig(tracking_uri=f"sqlite:///{folder / 'mlflow.db'}"))
        version = register_version(small_slice, registry, folder / "artifacts")
        registry.promote(version)
        return {"version": version}

    root, built = registry_copy(tmp_path_factory, "serving", build)
    config = RegistryConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    registry = IntentRegistry(config)
    return {"root": root, "registry": registry, "config": config, "first_version": built["version"]}


def service_env(serving_registry: dict, store_name: str = "store.db", **extra: str) -> dict:
    """The environment of a test service on the session registry, with its own store file."""
    root = serving_registry["root"]
    return os.environ | {
        "SERVING_MLFLOW_TRACKING_URI": serving_registry["config"].tracking_uri,
        "SERVING_STORE_URL": f"sqlite:///{root / store_name}",
        "SERVING_ADMIN_API_KEY": ADMIN_KEY,
        "SERVING_FEEDBACK_API_KEYS": f'{{"{FEEDBACK_KEY_NAME}": "{FEEDBACK_KEY}"}}',
        "SERVING_POLL_INTERVAL_S": "1",
        "SERVING_MAX_BATCH_ITEMS": "1000",
        "SERVING_TEST_LOG_DIR": str(root),
        "BENTOML_HOME": str(root / "bentoml"),
        "CHAT_JWT_SECRET": CHAT_SECRET,
        # Flood tests need a limit they can reach quickly.
        "CHAT_RATE_PER_S": "5",
        "CHAT_RATE_BURST": "10",
        **extra,
    }


@pytest.fixture(scope="session")
def service(serving_registry):
    """A running service (session-wide); tests that restart it leave it running."""
    process = ServiceProcess(service_env(serving_registry))
    process.start()
    yield process
    process.stop()

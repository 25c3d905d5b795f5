"""A real registry with a champion, and a real `bentoml serve` process on a free port."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from models.registry import IntentRegistry, RegistryConfig
from tests.conftest import register_version

REPO_ROOT = Path(__file__).resolve().parents[2]
ADMIN_KEY = "test-admin-key"
CHAT_SECRET = "test-chat-secret-that-is-long-enough-for-hs256"
FEEDBACK_KEY_NAME, FEEDBACK_KEY = "chat-backend", "test-feedback-key-0123456789"


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class ServiceProcess:
    """`bentoml serve serving.service:IntentService` with its own environment."""

    env: dict[str, str]
    port: int = field(default_factory=free_port)
    host: str = "127.0.0.1"
    process: subprocess.Popen | None = None
    log: Path | None = None

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
        """Wait until /readyz answers 200."""
        assert self.process is not None and self.log is not None
        deadline = time.monotonic() + 180
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"bentoml serve exited:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(f"{self.url}/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.5)
        self.stop()
        raise RuntimeError(f"bentoml serve not ready:\n{self.log.read_text()[-3000:]}")

    def stop(self, kill: bool = False) -> None:
        """Stop the server and its workers (SIGKILL when `kill`)."""
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGKILL if kill else signal.SIGTERM)
        try:
            self.process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait(timeout=10)


@pytest.fixture(scope="session")
def serving_registry(tmp_path_factory, small_slice):
    """An MLflow registry (SQLite) whose champion is a model trained on a Banking77 slice."""
    root = tmp_path_factory.mktemp("serving")
    config = RegistryConfig(tracking_uri=f"sqlite:///{root / 'mlflow.db'}")
    registry = IntentRegistry(config)
    version = register_version(small_slice, registry, root / "artifacts")
    registry.promote(version)
    return {"root": root, "registry": registry, "config": config, "first_version": version}


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

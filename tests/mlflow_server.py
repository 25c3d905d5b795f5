"""A real `mlflow server` for the tests: SQLite backend, proxied artifacts, a free local port.

The production profile's tracking server: clients only ever see its HTTP URL, and artifacts
are served by it (`--serve-artifacts`, experiments get `mlflow-artifacts:/` roots), so nothing
a client does may depend on reaching the server's folders. Started and stopped whole (the
uvicorn worker is a child of `mlflow server`) with `serving.process_tree`.
"""

from __future__ import annotations

import os
import subprocess
import sys
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

from serving.process_tree import stop_tree, wait_ready
from tests.ports import free_port

_HEALTH_TIMEOUT_S = 2.0


@dataclass
class MlflowServer:
    """A running tracking server: its URL, where it keeps things, and how to stop it."""

    uri: str
    port: int
    root: Path
    log: Path
    process: subprocess.Popen[bytes] = field(repr=False)

    @property
    def artifacts(self) -> Path:
        """The server's artifact destination (clients must never need it)."""
        return self.root / "artifacts"

    def answers(self) -> bool:
        """True when the server answers its health check."""
        try:
            with urllib.request.urlopen(f"{self.uri}/health", timeout=_HEALTH_TIMEOUT_S) as reply:
                return bool(reply.status == 200)
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Stop the server's whole process tree and check its port is free (idempotent)."""
        stop_tree(self.process, port=self.port)


@contextmanager
def running_mlflow_server(root: Path, backend_uri: str | None = None) -> Iterator[MlflowServer]:
    """Start `mlflow server` with its artifacts under `root`; stop it afterwards.

    The backend store is `backend_uri` (e.g. a PostgreSQL URL, the production profile's), else a
    SQLite database under `root`.
    """
    root.mkdir(parents=True, exist_ok=True)
    port = free_port()
    log = root / "server.log"
    command = [
        str(Path(sys.executable).with_name("mlflow")),
        "server",
        "--backend-store-uri",
        backend_uri or f"sqlite:///{root / 'mlflow.db'}",
        "--serve-artifacts",
        "--artifacts-destination",
        str(root / "artifacts"),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        # One worker: a 2-core machine shared with other servers. The default allowed hosts
        # (localhost and private addresses, any port) already admit 127.0.0.1:<port>.
        "--workers",
        "1",
    ]
    # The job runner serves GenAI jobs this project does not use: one process less to start.
    env = os.environ | {"MLFLOW_SERVER_ENABLE_JOB_EXECUTION": "false"}
    with log.open("wb") as output:
        process = subprocess.Popen(
            command, cwd=root, env=env, stdout=output, stderr=subprocess.STDOUT
        )
    server = MlflowServer(f"http://127.0.0.1:{port}", port, root, log, process)
    try:
        wait_ready(process, server.answers, log)
        yield server
    finally:
        server.stop()

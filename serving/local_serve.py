"""A `bentoml serve` of the intent service on this machine, for the duration of a `with` block.

`make evaluate` (pipelines/evaluate_serve.py) and `make drift-demo`'s shadow step
(pipelines/demo_shadow.py) both serve a sandbox's registry on a free loopback port, wait until
it is ready, send it HTTP traffic, and must leave nothing behind: BentoML's workers run in
sessions of their own, so the whole tree is stopped and the port checked free
(serving/process_tree.py). `make serve` (serving/launch.py) differs on purpose: it serves in the
foreground of the user's terminal, with the server's output there.
"""

from __future__ import annotations

import socket
import subprocess
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from pathlib import Path

from serving.launch import is_ready
from serving.process_tree import ServerStartError, stop_tree, tree, wait_ready

REPO_ROOT = Path(__file__).resolve().parents[1]
SERVICE = "serving.service:IntentService"


def free_loopback_port() -> int:
    """A TCP port nothing listens on now (the kernel's pick on loopback)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def serving_on_loopback(env: Mapping[str, str], log: Path, port: int) -> Iterator[str]:
    """`bentoml serve` of the intent service on 127.0.0.1:`port`; yields its base URL once
    /readyz answers.

    The server's output goes to `log`. A server that exits or stops making progress before it
    is ready raises `ServerStartError` (its tree already stopped). When the block ends, for any
    reason, the arbiter and every worker are stopped and the port is checked free.
    """
    bentoml = str(Path(sys.executable).with_name("bentoml"))
    url = f"http://127.0.0.1:{port}"
    with log.open("w") as output:
        process = subprocess.Popen(
            [bentoml, "serve", SERVICE, "--host", "127.0.0.1", "--port", str(port)],
            cwd=REPO_ROOT,
            env=dict(env),
            stdout=output,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    members = []
    try:
        try:
            wait_ready(process, lambda: is_ready(url), log)
        except ServerStartError:
            stop_tree(process, kill=True, known=tree(process.pid))
            raise
        members = tree(process.pid)  # the workers, found again once the arbiter is gone
        yield url
    finally:
        if process.poll() is None or members:
            stop_tree(process, port=port, known=members or tree(process.pid))

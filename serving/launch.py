"""`make serve`: start `bentoml serve`, print the URLs once /readyz answers, stop the whole tree.

`python -m serving.launch --host H --port P`. The server's own output goes to this terminal; the
URLs come only when the service is ready (not while it may still refuse to start). A refusal
(`serving/startup.py`) ends this command with the server's exit code. Ctrl-C or SIGTERM stops
the arbiter and every worker (they run in sessions of their own, see serving/process_tree.py).
"""

from __future__ import annotations

import argparse
import signal
import subprocess
import sys
import urllib.error
import urllib.request
from pathlib import Path
from types import FrameType

from serving.process_tree import ServerStartError, stop_tree, tree, wait_ready

EXIT_INTERRUPTED = 130


class Interrupted(Exception):
    """SIGTERM arrived (SIGINT arrives as KeyboardInterrupt)."""


def probe_host(host: str) -> str:
    """The host part of the service's URL (a wildcard bind answers on loopback)."""
    if host in ("0.0.0.0", ""):
        return "127.0.0.1"
    if host == "::":
        return "[::1]"
    return f"[{host}]" if ":" in host else host


def is_ready(base_url: str) -> bool:
    """True when GET /readyz answers 200."""
    try:
        with urllib.request.urlopen(f"{base_url}/readyz", timeout=2) as answer:
            return answer.status == 200
    except (urllib.error.URLError, OSError):
        return False


def urls(host: str, port: int) -> str:
    """The lines printed once the service is ready."""
    base = f"http://{probe_host(host)}:{port}"
    return (
        f"Intent service: {base}  (Swagger UI at /, OpenAPI at /docs.json)\n"
        f"Support chat:   {base}/chat/   agent console: {base}/chat/agent"
    )


def _raise_interrupted(signum: int, frame: FrameType | None) -> None:
    raise Interrupted


def serve(host: str, port: int) -> int:
    """Run the server until it exits or this process is interrupted; returns the exit code."""
    bentoml = Path(sys.executable).with_name("bentoml")
    command = [str(bentoml), "serve", "serving.service:IntentService", "--host", host]
    process = subprocess.Popen([*command, "--port", str(port)])
    signal.signal(signal.SIGTERM, _raise_interrupted)
    members = []
    try:
        wait_ready(process, lambda: is_ready(f"http://{probe_host(host)}:{port}"))
        members = tree(process.pid)  # the workers, found again after the arbiter is gone
        print(urls(host, port), flush=True)
        return process.wait()
    except ServerStartError:
        # It exited (its own message is above) or hung: leave nothing behind either way.
        stop_tree(process, kill=True, known=members)
        return process.returncode or 1
    except (KeyboardInterrupt, Interrupted):
        stop_tree(process, port=port, known=members or tree(process.pid))
        return EXIT_INTERRUPTED


def main(argv: list[str] | None = None) -> int:
    """Entry point."""
    parser = argparse.ArgumentParser(prog="python -m serving.launch", description=__doc__)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=3000)
    args = parser.parse_args(argv)
    return serve(args.host, args.port)


if __name__ == "__main__":
    sys.exit(main())

"""Ports handed to one pytest process are never handed to another while it lives."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tests.ports import free_port

REPO_ROOT = Path(__file__).resolve().parents[1]
# Another process (an xdist worker, another session) takes ports and keeps running.
TAKE_PORTS = "from tests.ports import free_port\nprint(*(free_port() for _ in range({n})))\n"


def _ephemeral_low() -> int:
    return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])


def test_a_port_another_process_holds_is_never_handed_out_here():
    other = subprocess.Popen(
        [sys.executable, "-c", TAKE_PORTS.format(n=300) + "import sys; sys.stdin.read()\n"],
        cwd=REPO_ROOT,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert other.stdout is not None
        theirs = {int(port) for port in other.stdout.readline().split()}
        ours = {free_port() for _ in range(300)}
    finally:
        other.communicate("", timeout=60)
    assert len(theirs) == len(ours) == 300
    assert not theirs & ours
    # Outgoing connections take ephemeral ports: none of ours can be taken that way.
    assert max(theirs | ours) < _ephemeral_low()

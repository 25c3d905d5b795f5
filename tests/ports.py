"""TCP ports for the servers the tests start, never handed out twice on this machine at once.

Binding port 0 and closing it (the kernel's pick) races: until the server binds it, another
pytest process (an xdist worker, another engineer's session) or any outgoing connection can take
the same ephemeral port. So ports come from below the kernel's ephemeral range, where outgoing
connections never land, and each one handed out is claimed by an exclusive `flock` on a file in
a machine-wide folder, held by this process until it exits (the kernel drops the lock even
after a crash). A claimed port is also checked to be free, for servers started by other means.
"""

from __future__ import annotations

import errno
import fcntl
import random
import socket
import tempfile
import threading
from pathlib import Path
from typing import IO

# Below Linux's default ephemeral range (32768-60999) and above the well-known servers' ports
# (PostgreSQL 5432, Redis 6379, MLflow 5000, Dagster 3000s, BentoML 3000).
PORT_RANGE = range(20000, 32000)
CLAIMS_DIR = Path(tempfile.gettempdir()) / "supportloop-test-ports"

_claimed: dict[int, IO[bytes]] = {}
_lock = threading.Lock()


def _bindable(port: int) -> bool:
    """Whether nothing on this machine holds `port` on loopback right now."""
    with socket.socket() as probe:
        try:
            probe.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def _claim(port: int) -> bool:
    """Take the machine-wide claim on `port` for this process's lifetime (False: taken)."""
    CLAIMS_DIR.mkdir(exist_ok=True)
    handle = (CLAIMS_DIR / f"{port}.lock").open("ab")
    try:
        fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        handle.close()
        if error.errno in (errno.EAGAIN, errno.EACCES):
            return False
        raise
    _claimed[port] = handle
    return True


def free_port() -> int:
    """A loopback TCP port no other caller of this function on the machine has been handed.

    The claim lasts until this process exits, so one session never reuses a port either (a
    session uses a few hundred of the 12,000).
    """
    # A random start per process: two sessions starting together do not contend port by port.
    start = random.SystemRandom().randrange(len(PORT_RANGE))
    with _lock:
        for offset in range(len(PORT_RANGE)):
            port = PORT_RANGE[(start + offset) % len(PORT_RANGE)]
            if port in _claimed or not _claim(port):
                continue
            if _bindable(port):
                return port
            # Someone outside the claims (a server started by other means) has it: keep the
            # claim, so this process does not try it again, and move on.
    raise RuntimeError(f"no free port left in {PORT_RANGE.start}-{PORT_RANGE.stop - 1}")

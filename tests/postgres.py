"""A real PostgreSQL for the tests: Debian's binaries, a temporary data directory, a free port.

PostgreSQL refuses to run as root, so when the suite runs as root the server runs as the
`postgres` user (`runuser`). It listens on 127.0.0.1 only, with password (SCRAM) authentication,
so the URLs the tests use carry a password just as a deployment's do. `stop()` shuts it down
(`pg_ctl stop -m fast`) and checks that the port is free again.
"""

from __future__ import annotations

import dataclasses
import glob
import logging
import os
import secrets
import shutil
import socket
import subprocess
import tempfile
from dataclasses import dataclass
from pathlib import Path

import sqlalchemy as sa

from tests.ports import free_port

logger = logging.getLogger(__name__)

SERVICE_USER = "postgres"  # the Debian package's system user
SUPERUSER = "supportloop"
START_TIMEOUT_S = 60


def postgres_bin_dir() -> Path | None:
    """The folder holding `initdb` and `pg_ctl` (PATH first, then Debian's versioned folders)."""
    found = shutil.which("initdb")
    if found:
        return Path(found).resolve().parent
    # Debian keeps the server binaries off PATH, in /usr/lib/postgresql/<major>/bin.
    candidates = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"))
    return Path(candidates[-1]).parent if candidates else None


def port_open(port: int) -> bool:
    """True when something accepts connections on 127.0.0.1:`port`."""
    with socket.socket() as probe:
        probe.settimeout(1.0)
        return probe.connect_ex(("127.0.0.1", port)) == 0


@dataclass(frozen=True)
class PostgresServer:
    """A running server: where it listens, its superuser's password and its data directory."""

    bin_dir: Path
    root: Path
    port: int
    password: str

    @property
    def data_dir(self) -> Path:
        """The cluster's data directory."""
        return self.root / "data"

    def url(self, database: str = "postgres", driver: str = "psycopg") -> str:
        """The SQLAlchemy URL of `database` (`postgresql+psycopg://…` by default)."""
        scheme = f"postgresql+{driver}" if driver else "postgresql"
        return f"{scheme}://{SUPERUSER}:{self.password}@127.0.0.1:{self.port}/{database}"

    def create_database(self, name: str) -> str:
        """Create an empty database; returns its SQLAlchemy URL."""
        engine = sa.create_engine(self.url(), isolation_level="AUTOCOMMIT")
        try:
            with engine.connect() as connection:
                connection.execute(sa.text(f'CREATE DATABASE "{name}"'))
        finally:
            engine.dispose()
        return self.url(name)

    def stop(self) -> None:
        """Shut the server down (fast: open sessions are cut) and check its port is free."""
        _run_as_service_user(
            [str(self.bin_dir / "pg_ctl"), "stop", "-D", str(self.data_dir), "-m", "fast", "-w"]
        )
        if port_open(self.port):
            raise RuntimeError(f"PostgreSQL still listens on port {self.port} after pg_ctl stop")
        shutil.rmtree(self.root, ignore_errors=True)


def _run_as_service_user(command: list[str]) -> None:
    prefix = ["runuser", "-u", SERVICE_USER, "--"] if os.geteuid() == 0 else []
    result = subprocess.run(
        prefix + command, capture_output=True, text=True, timeout=START_TIMEOUT_S, check=False
    )
    if result.returncode != 0:
        raise RuntimeError(
            f"{' '.join(command[:2])} failed ({result.returncode}): "
            f"{(result.stderr or result.stdout).strip()[-2000:]}"
        )


def start_postgres() -> PostgresServer:
    """initdb a temporary cluster and start it on a free port (waits until it accepts)."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise RuntimeError(
            "PostgreSQL's initdb is missing: `make test` installs it (Debian package postgresql)"
        )
    # Not under pytest's tmp_path: that is private to root and the server runs as `postgres`.
    root = Path(tempfile.mkdtemp(prefix="supportloop-pg-"))
    password = secrets.token_urlsafe(24)
    (root / "pwfile").write_text(password + "\n", encoding="utf-8")
    if os.geteuid() == 0:
        shutil.chown(root, SERVICE_USER)
        shutil.chown(root / "pwfile", SERVICE_USER)
    server = PostgresServer(bin_dir, root, free_port(), password)
    _run_as_service_user(
        [
            str(bin_dir / "initdb"),
            "-D",
            str(server.data_dir),
            "-U",
            SUPERUSER,
            f"--pwfile={root / 'pwfile'}",
            "--auth=scram-sha-256",
            "--encoding=UTF8",
            "--locale=C",
            "--no-sync",
        ]
    )
    # The free port may be taken between the probe and the start (other suites run here too).
    for attempt in range(3):
        try:
            _start(server)
            break
        except RuntimeError:
            if attempt == 2:
                raise
            server = dataclasses.replace(server, port=free_port())
    logger.info("PostgreSQL started on port %d in %s", server.port, root)
    return server


def _start(server: PostgresServer) -> None:
    root, bin_dir = server.root, server.bin_dir
    # Sockets in the data folder (Debian's /var/run/postgresql may be missing), TCP on loopback;
    # fsync off: a test cluster is thrown away, and it spares the shared disk.
    options = f"-p {server.port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off"
    log = root / "server.log"
    command = [str(bin_dir / "pg_ctl"), "start", "-D", str(server.data_dir), "-l", str(log)]
    try:
        _run_as_service_user([*command, "-o", options, "-w", "-t", str(START_TIMEOUT_S)])
    except RuntimeError as failure:
        # pg_ctl says only "could not start server": the cause is in the server's log.
        tail = log.read_text(encoding="utf-8", errors="replace")[-1500:] if log.exists() else ""
        raise RuntimeError(f"{failure}\n{tail}") from failure

"""A Prometheus multiprocess directory of its own for every `bentoml serve` on the host.

BentoML 1.4 puts the multiprocess files of every server in one directory,
`$BENTOML_HOME/prometheus_multiproc_dir` (`BentoMLContainer.prometheus_multiproc_dir`), and
empties it whenever a server starts (`bentoml.serving.ensure_prometheus_dir`, called first thing
by `_bentoml_impl.server.serve_http`). A second server on the host therefore deletes the first
one's counters, and from then on both `/metrics` report the same, merged numbers.

`bentoml serve` imports the service module before it calls `ensure_prometheus_dir`, so
`serving/service.py` calls `use_own_metrics_dir()` at import: in the serving process that
points BentoML at `$BENTOML_HOME/prometheus/serve-<pid>`, which BentoML creates and exports to
its workers as `PROMETHEUS_MULTIPROC_DIR`. Nothing here touches the disk at import; the
directory (and those of servers that died without cleaning up) is removed at exit.
"""

from __future__ import annotations

import atexit
import os
import shutil
from collections.abc import Mapping
from pathlib import Path

from bentoml._internal.configuration import expand_env_var
from bentoml._internal.container import BentoMLContainer

PROMETHEUS_ENV = "PROMETHEUS_MULTIPROC_DIR"
_PREFIX = "serve-"


def bentoml_home(environ: Mapping[str, str]) -> Path:
    """BentoML's home as BentoML resolves it, without creating it."""
    return Path(expand_env_var(environ.get("BENTOML_HOME", "~/bentoml")))


def server_metrics_dir(environ: Mapping[str, str], pid: int) -> Path:
    """The multiprocess directory of the server whose `bentoml serve` process is `pid`."""
    return bentoml_home(environ) / "prometheus" / f"{_PREFIX}{pid}"


def use_own_metrics_dir(environ: Mapping[str, str] = os.environ, pid: int | None = None) -> Path:
    """Point BentoML's Prometheus multiprocess directory at this server's own; return it.

    A worker already has `PROMETHEUS_MULTIPROC_DIR` from its server (and an operator may set
    it on purpose): that directory is kept. Otherwise the directory is this process's own.
    """
    chosen = environ.get(PROMETHEUS_ENV)
    if chosen:
        path = Path(chosen)
    else:
        path = server_metrics_dir(environ, os.getpid() if pid is None else pid)
        atexit.register(remove_dead_servers_dirs, path.parent)
    BentoMLContainer.prometheus_multiproc_dir.set(str(path))
    return path


def _running(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process
        return True
    return True


def remove_dead_servers_dirs(parent: Path) -> list[Path]:
    """Remove the directories of servers no longer running (this one included, at its exit)."""
    removed = []
    for path in parent.glob(f"{_PREFIX}*") if parent.is_dir() else ():
        pid = path.name.removeprefix(_PREFIX)
        if pid.isdigit() and (int(pid) == os.getpid() or not _running(int(pid))):
            shutil.rmtree(path, ignore_errors=True)
            removed.append(path)
    return removed

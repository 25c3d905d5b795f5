"""Runs `pipelines.cli materialize` again and again, each time in a fresh forked child.

    python -m tests.pipelines.crash_driver RUN_CONFIG LOG_DIR

Reads one request per line on stdin, a fault boundary (models/faults.py) or `clean`, runs the
CLI's `main(["materialize", "--run-config", RUN_CONFIG])` in a child process with
SUPPORTLOOP_FAULT_AT set to it, and answers one JSON line `{"boundary", "returncode", "log"}`
(returncode -9 when the child was SIGKILLed). The environment (stores, data) is the driver's.

Why a driver: a fresh interpreter spends about 25 s of this machine's CPU importing Dagster,
MLflow, scikit-learn and spaCy. The driver imports them once and forks; every child is still a
separate process with its own database connections that dies by SIGKILL exactly as
`make pipeline` would. The driver opens no store itself, so children share no connection.

It also imports what every run imports on its way rather than at start: the SQLite stores of
MLflow and Dagster, MLflow's dataset and artifact modules, TextBlob. Left to the children, that
is ~4.5 s of CPU in each of the chain's eight links (a reused version's run: 11 s -> 6.5 s).
"""

from __future__ import annotations

import json
import os
import sys
import traceback
from pathlib import Path

# Imported once here and inherited by every child (see the module docstring).
import alembic.command  # noqa: F401
import dagster._core.storage.sqlite_storage  # noqa: F401
import matplotlib.pyplot  # noqa: F401
import mlflow.artifacts
import mlflow.data.pandas_dataset
import mlflow.sklearn
import mlflow.store.model_registry.sqlalchemy_store
import mlflow.store.tracking.sqlalchemy_store  # noqa: F401
import skops.io  # noqa: F401

import models.inference  # noqa: F401
import pipelines.definitions  # noqa: F401
from features import sentiment
from models.faults import FAULT_ENV
from pipelines import cli

sentiment.warm_up()  # TextBlob, NLTK and the lexicon: pure data, safe to fork

CLEAN = "clean"


def run_child(boundary: str, run_config: Path, log: Path) -> int:
    """One CLI run in a forked child; its exit code, or -signal when a signal ended it."""
    pid = os.fork()
    if pid == 0:  # the child: never returns
        code = 70
        try:
            handle = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            os.dup2(handle, 1)
            os.dup2(handle, 2)
            if boundary != CLEAN:
                os.environ[FAULT_ENV] = boundary
            code = cli.main(["materialize", "--run-config", str(run_config)])
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stdout.flush()
            sys.stderr.flush()
            os._exit(code)
    _, status = os.waitpid(pid, 0)
    return -os.WTERMSIG(status) if os.WIFSIGNALED(status) else os.WEXITSTATUS(status)


def main() -> None:
    """Serve requests from stdin until it closes."""
    run_config, log_dir = Path(sys.argv[1]), Path(sys.argv[2])
    for number, line in enumerate(sys.stdin):
        boundary = line.strip()
        log = log_dir / f"{number:02d}-{boundary}.log"
        returncode = run_child(boundary, run_config, log)
        answer = {"boundary": boundary, "returncode": returncode, "log": str(log)}
        print(json.dumps(answer), flush=True)


if __name__ == "__main__":
    main()

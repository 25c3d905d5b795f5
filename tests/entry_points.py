"""Run a command's `main(argv)` in the test process, as its `python -m` subprocess would run.

Starting an interpreter per message check costs seconds of imports (MLflow, Dagster, BentoML)
each; the tests that only check what a command says call its entry point here instead. The
environment is replaced by exactly the one given (monkeypatch puts the original back), the
working directory is the repository's, and the result is a `subprocess.CompletedProcess` so the
same assertions serve both ways. One real subprocess per command stays in the suite: it proves
the `python -m` path, the exit code and the absence of a traceback end to end.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable, Mapping
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]


def exit_code(stop: SystemExit) -> int:
    """The process exit code a SystemExit would give, printing a message as Python does."""
    if stop.code is None:
        return 0
    if isinstance(stop.code, int):
        return stop.code
    print(stop.code, file=sys.stderr)
    return 1


def replace_environ(monkeypatch: pytest.MonkeyPatch, env: Mapping[str, str]) -> None:
    """Make os.environ exactly `env` for this test; monkeypatch restores it afterwards."""
    for name in set(os.environ) - set(env):
        monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, value)


def run_main(
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
    main: Callable[..., int | None],
    argv: list[str] | None,
    env: Mapping[str, str],
) -> subprocess.CompletedProcess[str]:
    """`main(argv)` (or `main()` when argv is None) in `env`; its exit code, stdout and stderr.

    An entry point that changes os.environ itself (the drift demo points it at its sandbox)
    has its changes undone as soon as it returns, as they would die with its process.
    """
    replace_environ(monkeypatch, env)
    saved = dict(os.environ)
    monkeypatch.chdir(REPO_ROOT)
    capsys.readouterr()  # what the test printed before is not the command's output
    try:
        code = main() if argv is None else main(argv)
        returncode = 0 if code is None else int(code)
    except SystemExit as stop:
        returncode = exit_code(stop)
    finally:
        # Variables the command set that monkeypatch does not know of are not left behind.
        for name in set(os.environ) - set(saved):
            del os.environ[name]
        os.environ.update(saved)
    out, err = capsys.readouterr()
    return subprocess.CompletedProcess(["main", *(argv or [])], returncode, out, err)

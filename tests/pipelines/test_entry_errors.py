"""The scheduler, the drift demo, the monitoring job and the Dagster definitions refuse a bad
setting in one line naming its variable (exit code 2), before they schedule, wipe or run anything.

Every case calls the entry point's `main` in this process (tests/entry_points.py); one real
`python -m` subprocess per command proves the refusal end to end (no traceback, nothing else on
stderr).
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from models.settings_errors import SettingsProblem
from monitoring import job
from pipelines import drift_demo, scheduler
from tests.entry_points import run_main
from tests.pipelines.test_cli_errors import REPO_ROOT, assert_one_line_error

MONITORING_BAD = (
    "MONITORING_MIN_LABELS",
    "-3",
    "MONITORING_MIN_LABELS: Input should be greater than 0",
)
PIPELINE_BAD = ("MAX_TEXT_CHARS", "many", "MAX_TEXT_CHARS: Input should be a valid integer")
SCHEDULER = ["-m", "pipelines.scheduler"]
DEMO = ["-m", "pipelines.drift_demo"]
CASES = [
    (SCHEDULER, MONITORING_BAD),
    (SCHEDULER, PIPELINE_BAD),
    ([*SCHEDULER, "--run-now", "monitoring"], MONITORING_BAD),
    (DEMO, MONITORING_BAD),
    (DEMO, PIPELINE_BAD),
    (["-m", "monitoring.job"], MONITORING_BAD),
]
# One subprocess per command: the `python -m` path itself.
REAL_CASES = [CASES[0], CASES[4], CASES[5]]
# Each module's main and whether it takes argv (the demo and the monitoring job take none).
MAINS: dict[str, tuple[Callable[..., int | None], bool]] = {
    "pipelines.scheduler": (scheduler.main, True),
    "pipelines.drift_demo": (drift_demo.main, False),
    "monitoring.job": (job.main, False),
}


def case_id(args: list[str], bad: tuple[str, str, str]) -> str:
    """`pipelines.scheduler --run-now monitoring MONITORING_MIN_LABELS`."""
    return " ".join([*args[1:], bad[0]])


def entry_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment with every store and sandbox under `tmp_path`."""
    return os.environ | {
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "DEMO_DIR": str(tmp_path / "demo"),
        **extra,
    }


def run_entry(tmp_path: Path, args: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in the repository with every store and sandbox under `tmp_path`."""
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=entry_env(tmp_path, **extra),
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def assert_refused(
    done: subprocess.CompletedProcess[str], tmp_path: Path, bad: tuple[str, str, str]
) -> None:
    """One line naming the variable, never its value; the demo's sandbox not touched."""
    _, value, named = bad
    assert_one_line_error(done, f"bad setting {named}")
    assert value not in done.stderr.removeprefix("error: bad setting")  # values may be secrets
    assert not (tmp_path / "demo").exists()


@pytest.mark.parametrize(("args", "bad"), CASES, ids=[case_id(*case) for case in CASES])
def test_an_entry_script_names_a_bad_setting_in_one_line(tmp_path, monkeypatch, capsys, args, bad):
    main, takes_argv = MAINS[args[1]]
    env = entry_env(tmp_path, **{bad[0]: bad[1]})
    done = run_main(monkeypatch, capsys, main, args[2:] if takes_argv else None, env)
    assert_refused(done, tmp_path, bad)


@pytest.mark.parametrize(("args", "bad"), REAL_CASES, ids=[case_id(*c) for c in REAL_CASES])
def test_the_real_command_names_a_bad_setting_in_one_line(tmp_path, args, bad):
    done = run_entry(tmp_path, args, **{bad[0]: bad[1]})
    assert_refused(done, tmp_path, bad)


@pytest.mark.parametrize(("variable", "value", "named"), [MONITORING_BAD, PIPELINE_BAD])
def test_the_dagster_definitions_name_a_bad_setting(monkeypatch, variable, value, named):
    from pipelines.definitions import build_definitions

    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsProblem) as problem:
        build_definitions()
    assert str(problem.value).startswith(f"bad setting {named}")

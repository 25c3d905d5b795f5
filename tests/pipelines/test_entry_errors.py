"""The scheduler, the drift demo, the monitoring job and the Dagster definitions refuse a bad
setting in one line naming its variable (exit code 2), before they schedule, wipe or run anything.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from models.settings_errors import SettingsProblem
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


def run_entry(tmp_path: Path, args: list[str], **extra: str) -> subprocess.CompletedProcess[str]:
    """`python ARGS` in the repository with every store and sandbox under `tmp_path`."""
    env = os.environ | {
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "DEMO_DIR": str(tmp_path / "demo"),
        **extra,
    }
    return subprocess.run(
        [sys.executable, *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


@pytest.mark.parametrize(("args", "bad"), CASES, ids=[" ".join([*a[1:], b[0]]) for a, b in CASES])
def test_an_entry_script_names_a_bad_setting_in_one_line(tmp_path, args, bad):
    variable, value, named = bad
    done = run_entry(tmp_path, args, **{variable: value})
    assert_one_line_error(done, f"bad setting {named}")
    assert value not in done.stderr.removeprefix("error: bad setting")  # values may be secrets
    assert not (tmp_path / "demo").exists()  # the demo's sandbox is not touched


@pytest.mark.parametrize(("variable", "value", "named"), [MONITORING_BAD, PIPELINE_BAD])
def test_the_dagster_definitions_name_a_bad_setting(monkeypatch, variable, value, named):
    from pipelines.definitions import build_definitions

    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsProblem) as problem:
        build_definitions()
    assert str(problem.value).startswith(f"bad setting {named}")

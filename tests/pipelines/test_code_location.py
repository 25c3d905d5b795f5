"""Dagster shows one code location named `supportloop`, however the UI is started.

The real `dagster` CLI loads the committed workspace.yaml (what `make ui`, the webserver and the
daemon load) and pyproject's [tool.dagster] (a bare `dagster dev` in the repository).
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[2]
LOCATION = "supportloop"


def _dagster(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"DAGSTER_HOME": str(tmp_path)}
    return subprocess.run(
        [str(Path(sys.executable).with_name("dagster")), *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )


def test_the_workspace_file_loads_one_location_named_supportloop(tmp_path):
    done = _dagster(tmp_path, "job", "list", "-w", "workspace.yaml", "-l", LOCATION)
    assert done.returncode == 0, done.stderr[-2000:]
    assert "training_job" in done.stdout and "monitoring_job" in done.stdout


def test_make_ui_serves_the_workspace_file():
    done = subprocess.run(
        ["make", "-n", "ui"], cwd=REPO_ROOT, capture_output=True, text=True, check=False
    )
    assert done.returncode == 0, done.stderr
    [command] = [line for line in done.stdout.splitlines() if "dagster dev" in line]
    assert "-w workspace.yaml" in command and " -m " not in command

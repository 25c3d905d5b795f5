"""Schemathesis drives every operation in /docs.json with generated inputs: no 5xx allowed."""

from __future__ import annotations

import re
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.slow


def test_schemathesis_finds_no_server_error(service):
    result = subprocess.run(
        [
            str(Path(sys.executable).with_name("schemathesis")),
            "run",
            f"{service.url}/docs.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "40",
            "--generation-deterministic",
            "--request-timeout",
            "30",
        ],
        capture_output=True,
        text=True,
        timeout=600,
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-4000:]
    assert "Failures:" not in output
    tested = re.search(r"Tested: (\d+)", output)
    assert tested and int(tested.group(1)) >= 5, output[-2000:]

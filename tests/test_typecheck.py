"""`make test` type-checks first, with a configuration that refuses what it should.

mypy runs on a small module written here, with the project's own [tool.mypy] configuration
(pyproject.toml) and a cache of its own; the Makefile is read with `make -n`, nothing is run.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parents[1]
MYPY = Path(sys.executable).with_name("mypy")
TYPED = 'def first(rows: list[int]) -> int:\n    """The first row."""\n    return rows[0]\n'


def mypy(tmp_path: Path, source: str) -> subprocess.CompletedProcess[str]:
    """mypy with the project configuration over one module holding `source`."""
    module = tmp_path / "sample.py"
    module.write_text(source)
    command = [str(MYPY), "--config-file", str(REPO_ROOT / "pyproject.toml")]
    command += ["--cache-dir", str(tmp_path / "mypy_cache"), str(module)]
    return subprocess.run(command, cwd=tmp_path, capture_output=True, text=True, timeout=300)


def test_a_typed_module_passes(tmp_path):
    result = mypy(tmp_path, TYPED)
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(
    ("source", "code"),
    [
        (TYPED.replace("-> int", "-> str"), "return-value"),
        (TYPED.replace("rows: list[int]) -> int", "rows)"), "no-untyped-def"),
        ('LIMIT: int = "many"  # type: ignore\n', "ignore-without-code"),
    ],
    ids=["type-error", "untyped-function", "ignore-without-code"],
)
def test_the_configuration_fails_on(tmp_path, source, code):
    result = mypy(tmp_path, source)
    assert result.returncode == 1, result.stdout + result.stderr
    assert f"[{code}]" in result.stdout


@pytest.mark.parametrize("target", ["test", "test-fast"])
def test_make_runs_the_type_checker_before_pytest(target):
    planned = subprocess.run(
        ["make", "-n", "--no-print-directory", target],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
        timeout=60,
    ).stdout.splitlines()
    mypy_line = next(i for i, line in enumerate(planned) if line.endswith("/bin/mypy"))
    pytest_line = next(i for i, line in enumerate(planned) if " -m pytest" in line)
    assert mypy_line < pytest_line

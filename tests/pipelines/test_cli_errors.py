"""Terminal commands that cannot do their job say why in one line, exit 2, and change nothing.

Each runs the real command (`python -m pipelines.cli …`, `make token`) in a subprocess against
stores in a temporary directory.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from pathlib import Path

import pytest

from models.registry import IntentRegistry, RegistryConfig
from serving.chat.auth import Role, verify_token

REPO_ROOT = Path(__file__).resolve().parents[2]
SECRET = "test-chat-secret-that-is-long-enough-for-hs256"


def cli_env(tmp_path: Path, **extra: str) -> dict[str, str]:
    """The environment of a CLI run whose every store is under `tmp_path`."""
    env = {k: v for k, v in os.environ.items() if k != "MLFLOW_REGISTRY_URI"}
    return env | {
        "DAGSTER_HOME": str(tmp_path / "dagster_home"),
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        **extra,
    }


def run_cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`python -m pipelines.cli ARGS` in the repository."""
    return subprocess.run(
        [sys.executable, "-m", "pipelines.cli", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def assert_one_line_error(done: subprocess.CompletedProcess[str], *fragments: str) -> None:
    """Exit code 2, nothing on stdout, one `error:` line on stderr holding every fragment."""
    assert done.returncode == 2, done.stderr
    assert "Traceback" not in done.stderr
    lines = [line for line in done.stderr.splitlines() if line.strip()]
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ")
    for fragment in fragments:
        assert fragment in lines[0]
    assert done.stdout == ""


@pytest.mark.parametrize(
    "command", [["status"], ["promote", "--version", "1", "--reason", "test"], ["rollback"]]
)
def test_read_only_commands_on_a_missing_sqlite_store_say_so_and_create_nothing(tmp_path, command):
    database = tmp_path / "missing" / "mlflow.db"
    env = cli_env(tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{database}")
    done = run_cli(env, *command)
    assert_one_line_error(
        done, f"no MLflow database at {database}", "make pipeline", "MLFLOW_TRACKING_URI"
    )
    assert not database.parent.exists()


def test_status_against_an_unreachable_tracking_server_is_one_line(tmp_path):
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
        done = run_cli(cli_env(tmp_path, MLFLOW_TRACKING_URI=uri), "status")
    assert_one_line_error(done, f"MLflow tracking server {uri} is unreachable")


@pytest.mark.parametrize("uri", ["foo://tracking", "mlruns", "file:///tmp/mlruns"])
def test_status_against_a_tracking_uri_mlflow_cannot_use_is_one_line(tmp_path, uri):
    done = run_cli(cli_env(tmp_path, MLFLOW_TRACKING_URI=uri), "status")
    assert_one_line_error(done, "MLFLOW_TRACKING_URI must be a sqlite:///path", repr(uri))


def test_promote_of_an_unknown_version_is_one_line(tmp_path):
    env = cli_env(tmp_path)
    IntentRegistry(RegistryConfig(env["MLFLOW_TRACKING_URI"])).ensure_registered_model()
    done = run_cli(env, "promote", "--version", "99", "--reason", "test")
    assert_one_line_error(done, "intent-classifier has no version '99'")


def test_make_promote_without_a_version_prints_its_usage():
    done = subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "promote"],
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode != 0 and "usage: make promote VERSION=n" in done.stdout


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("MAX_TEXT_CHARS", "many", "MAX_TEXT_CHARS: Input should be a valid integer"),
        ("RETRAIN_MIN_NEW_LABELS", "-1", "RETRAIN_MIN_NEW_LABELS: Input should be greater"),
        ("LABELLED_CSV_PATHS", "[not json", "LABELLED_CSV_PATHS: cannot parse the value"),
    ],
)
def test_a_bad_setting_names_its_variable_in_one_line(tmp_path, variable, value, named):
    done = run_cli(cli_env(tmp_path, **{variable: value}), "status")
    assert_one_line_error(done, f"bad setting {named}")
    assert value not in done.stderr.removeprefix("error: bad setting")  # values may be secrets


def make_token(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`make token ARGS` (the install stamp is not remade)."""
    return subprocess.run(
        ["make", "-s", "-o", ".venv/.installed", "token", *args],
        cwd=REPO_ROOT,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )


def test_make_token_takes_chat_user_not_the_shell_user():
    env = os.environ | {"USER": "shell-login", "CHAT_JWT_SECRET": SECRET}
    done = make_token(env, "CHAT_USER=alice", "ROLE=agent")
    assert done.returncode == 0, done.stderr
    identity = verify_token(SECRET, done.stdout.strip())
    assert (identity.user_id, identity.role) == ("alice", Role.AGENT)

    default = verify_token(SECRET, make_token(env).stdout.strip())
    assert default.user_id == "customer-1"  # not the login name the shell exports


def test_make_token_with_a_short_secret_is_one_line():
    done = make_token(os.environ | {"CHAT_JWT_SECRET": "short"}, "CHAT_USER=alice")
    assert "Traceback" not in done.stderr
    assert "error: bad setting CHAT_JWT_SECRET must be at least 32" in done.stderr


def test_make_token_with_an_empty_chat_user_prints_its_usage():
    done = make_token(os.environ | {"CHAT_JWT_SECRET": SECRET}, "CHAT_USER=")
    assert done.returncode != 0 and done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == "usage: make token CHAT_USER=alice ROLE=customer|agent"

"""Terminal commands that cannot do their job say why in one line, exit 2, and change nothing.

Each check runs against stores in a temporary directory. The messages are checked by calling
the command's `main(argv)` in this process (tests/entry_points.py); one real `python -m
pipelines.cli` subprocess proves the same refusal end to end (exit code 2, one line, no
traceback, nothing else on stderr), and the Makefile targets run for real.
"""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest

from models.registry import IntentRegistry, RegistryConfig
from models.settings_errors import SettingsProblem
from monitoring.settings import MonitoringSettings
from pipelines import cli
from pipelines.definitions import build_definitions
from pipelines.settings import PipelineSettings
from serving.chat import token_cli
from serving.chat.auth import Role, verify_token
from tests.entry_points import run_main

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


@pytest.fixture()
def cli_main(tmp_path, monkeypatch, capsys) -> Callable[..., subprocess.CompletedProcess[str]]:
    """`pipelines.cli.main(ARGS)` in this process, in `cli_env(tmp_path, **extra)`."""

    def run(*args: str, **extra: str) -> subprocess.CompletedProcess[str]:
        return run_main(monkeypatch, capsys, cli.main, list(args), cli_env(tmp_path, **extra))

    return run


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
def test_read_only_commands_on_a_missing_sqlite_store_say_so_and_create_nothing(
    tmp_path, cli_main, command
):
    database = tmp_path / "missing" / "mlflow.db"
    done = cli_main(*command, MLFLOW_TRACKING_URI=f"sqlite:///{database}")
    assert_one_line_error(
        done, f"no MLflow database at {database}", "make pipeline", "MLFLOW_TRACKING_URI"
    )
    assert not database.parent.exists()


def test_the_real_command_refuses_in_one_line_with_exit_code_2(tmp_path):
    # The one subprocess: `python -m pipelines.cli` itself, where a traceback, a library's
    # warning or a print on stderr would show (the in-process checks above cannot see those).
    database = tmp_path / "missing" / "mlflow.db"
    done = run_cli(cli_env(tmp_path, MLFLOW_TRACKING_URI=f"sqlite:///{database}"), "status")
    assert_one_line_error(
        done, f"no MLflow database at {database}", "make pipeline", "MLFLOW_TRACKING_URI"
    )
    assert not database.parent.exists()


def test_status_against_an_unreachable_tracking_server_is_one_line(cli_main):
    with socket.socket() as sock:  # a port nobody listens on: bound, never listening
        sock.bind(("127.0.0.1", 0))
        uri = f"http://127.0.0.1:{sock.getsockname()[1]}"
        done = cli_main("status", MLFLOW_TRACKING_URI=uri)
    assert_one_line_error(done, f"MLflow tracking server {uri} is unreachable")


@pytest.mark.parametrize("uri", ["foo://tracking", "mlruns", "file:///tmp/mlruns"])
def test_status_against_a_tracking_uri_mlflow_cannot_use_is_one_line(cli_main, uri):
    done = cli_main("status", MLFLOW_TRACKING_URI=uri)
    assert_one_line_error(done, "MLFLOW_TRACKING_URI must be a sqlite:///path", repr(uri))


def test_promote_of_an_unknown_version_is_one_line(tmp_path, cli_main):
    uri = cli_env(tmp_path)["MLFLOW_TRACKING_URI"]
    IntentRegistry(RegistryConfig(uri)).ensure_registered_model()
    done = cli_main("promote", "--version", "99", "--reason", "test")
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
def test_a_bad_setting_names_its_variable_in_one_line(cli_main, variable, value, named):
    done = cli_main("status", **{variable: value})
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


def test_a_token_with_a_short_secret_is_one_line(monkeypatch, capsys):
    # What `make token CHAT_USER=alice` runs (the Makefile's path is proven by the tests above).
    env = os.environ | {"CHAT_JWT_SECRET": "short"}
    done = run_main(monkeypatch, capsys, token_cli.main, ["--user", "alice"], env)
    assert_one_line_error(done, "error: bad setting CHAT_JWT_SECRET must be at least 32")


def test_make_token_with_an_empty_chat_user_prints_its_usage():
    done = make_token(os.environ | {"CHAT_JWT_SECRET": SECRET}, "CHAT_USER=")
    assert done.returncode != 0 and done.stdout == ""
    assert "Traceback" not in done.stderr
    assert done.stderr.splitlines()[0] == "usage: make token CHAT_USER=alice ROLE=customer|agent"


@pytest.mark.parametrize(
    ("variable", "value", "named"),
    [
        ("TRAIN_MIN_NEW_FRACTION", "abc", "TRAIN_MIN_NEW_FRACTION: Input should be a valid number"),
        (
            "TRAIN_SELECTION_MAX_EXAMPLES",
            "0",
            "TRAIN_SELECTION_MAX_EXAMPLES: Input should be greater",
        ),
        ("TRAIN_OOS_DRAWS", "-1", "TRAIN_OOS_DRAWS: Input should be greater than or equal"),
        ("TRAIN_OOS_TARGET_RECALL", "x", "TRAIN_OOS_TARGET_RECALL: Input should be a valid"),
        ("TRAIN_MODEL_PROFILE", "heavy", "TRAIN_MODEL_PROFILE: Input should be 'default' or"),
        ("TRAIN_FALLBACK_POLICY", "cheap", "TRAIN_FALLBACK_POLICY: Input should be 'answered_"),
        (
            "TRAIN_FALLBACK_MIN_ANSWERED_ACCURACY",
            "1.5",
            "TRAIN_FALLBACK_MIN_ANSWERED_ACCURACY: Input should be less than or equal to 1",
        ),
    ],
)
def test_a_bad_training_setting_stops_the_code_location_at_load(variable, value, named):
    # Read by the training step; a bad value used to fail the run there, mid-way, unnamed.
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv(variable, value)
        with pytest.raises(SettingsProblem) as refused:
            build_definitions(PipelineSettings(), MonitoringSettings())
    assert str(refused.value).startswith(f"bad setting {named}")

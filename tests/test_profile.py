"""SUPPORTLOOP_PROFILE=production: every entry point refuses a missing server URL in one line.

The embedded default needs nothing set. Under production the pipeline CLI and `bentoml serve`
(both real, in subprocesses) exit 2 naming the variable, and the committed template
deploy/production.env.example satisfies every settings class (renaming a variable fails here).
"""

from __future__ import annotations

from pathlib import Path

import pytest
from dotenv import dotenv_values
from pydantic_settings import BaseSettings

from models.profile import PROFILE_VARIABLE, Profile
from models.settings_errors import SettingsProblem, load_settings
from monitoring.settings import MonitoringSettings
from pipelines import cli
from pipelines.settings import PipelineSettings
from serving.chat.settings import ChatSettings
from serving.settings import ServingSettings
from tests.entry_points import run_main
from tests.pipelines.test_cli_errors import assert_one_line_error, cli_env

REPO_ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = REPO_ROOT / "deploy" / "production.env.example"
SETTINGS: list[type[BaseSettings]] = [
    PipelineSettings,
    ServingSettings,
    ChatSettings,
    MonitoringSettings,
]
# Every variable that can carry a server URL, cleared so the machine's own cannot leak in.
URL_VARIABLES = [
    "CONVERSATION_STORE_URL",
    "SERVING_STORE_URL",
    "CHAT_STORE_URL",
    "MONITORING_STORE_URL",
    "MLFLOW_TRACKING_URI",
    "SERVING_MLFLOW_TRACKING_URI",
    "MONITORING_MLFLOW_TRACKING_URI",
    "MLFLOW_REGISTRY_URI",
    "SERVING_MLFLOW_REGISTRY_URI",
    "MONITORING_MLFLOW_REGISTRY_URI",
    "CHAT_BROKER_URL",
    "DAGSTER_PG_URL",
]


@pytest.fixture()
def clean_env(monkeypatch, tmp_path):
    """No server URL nor profile in the environment, and no `.env` in the working directory."""
    for variable in [*URL_VARIABLES, PROFILE_VARIABLE]:
        monkeypatch.delenv(variable, raising=False)
    monkeypatch.chdir(tmp_path)
    return monkeypatch


@pytest.mark.parametrize("settings_cls", SETTINGS, ids=lambda cls: cls.__name__)
def test_the_embedded_default_needs_no_url(clean_env, settings_cls):
    assert load_settings(settings_cls).profile is Profile.EMBEDDED  # type: ignore[attr-defined]


@pytest.mark.parametrize("settings_cls", SETTINGS, ids=lambda cls: cls.__name__)
def test_production_names_every_missing_url(clean_env, settings_cls):
    clean_env.setenv(PROFILE_VARIABLE, "production")
    with pytest.raises(SettingsProblem) as problem:
        load_settings(settings_cls)
    message = str(problem.value)
    assert "\n" not in message
    assert "CONVERSATION_STORE_URL is not set" in message
    if settings_cls is ChatSettings:
        assert "CHAT_BROKER_URL is not set" in message
    else:
        assert "MLFLOW_TRACKING_URI is not set" in message
    assert ("DAGSTER_PG_URL is not set" in message) == (settings_cls is PipelineSettings)


def test_production_refuses_a_local_file_where_a_server_belongs(clean_env):
    for variable, value in dotenv_values(TEMPLATE).items():
        clean_env.setenv(variable, value or "")
    clean_env.setenv("SERVING_MLFLOW_TRACKING_URI", "sqlite:////tmp/secret-path/mlflow.db")
    with pytest.raises(SettingsProblem) as problem:
        load_settings(ServingSettings)
    assert "SERVING_MLFLOW_TRACKING_URI must be the MLflow tracking server" in str(problem.value)
    assert "secret-path" not in str(problem.value)  # values are never echoed


@pytest.mark.parametrize(
    "settings_cls",
    [PipelineSettings, ServingSettings, MonitoringSettings],
    ids=lambda c: c.__name__,
)
def test_production_refuses_a_registry_uri_that_is_a_database(clean_env, settings_cls):
    # Unset, the registry is the tracking server; set, clients must not reach its database.
    for variable, value in dotenv_values(TEMPLATE).items():
        clean_env.setenv(variable, value or "")
    load_settings(settings_cls)
    clean_env.setenv("MLFLOW_REGISTRY_URI", "postgresql+psycopg://u:p@db/mlflow")
    with pytest.raises(SettingsProblem, match="MLFLOW_REGISTRY_URI must be the MLflow registry"):
        load_settings(settings_cls)


@pytest.mark.parametrize("settings_cls", SETTINGS, ids=lambda cls: cls.__name__)
def test_the_committed_template_satisfies_every_settings_class(clean_env, settings_cls):
    for variable, value in dotenv_values(TEMPLATE).items():
        clean_env.setenv(variable, value or "")
    assert load_settings(settings_cls).profile is Profile.PRODUCTION  # type: ignore[attr-defined]


def test_the_profile_can_come_from_dot_env(clean_env, tmp_path):
    (tmp_path / ".env").write_text(f"{PROFILE_VARIABLE}=production\n")
    with pytest.raises(SettingsProblem, match="CONVERSATION_STORE_URL is not set"):
        load_settings(PipelineSettings)


def test_the_pipeline_cli_refuses_a_missing_url_in_one_line(tmp_path, monkeypatch, capsys):
    # pipelines.cli.main in this process (test_cli_errors.py runs the real command once).
    env = cli_env(tmp_path, **{PROFILE_VARIABLE: "production"})
    env |= {key: value or "" for key, value in dotenv_values(TEMPLATE).items()}
    env.pop("DAGSTER_PG_URL")
    done = run_main(monkeypatch, capsys, cli.main, ["status"], env)
    assert_one_line_error(done, "DAGSTER_PG_URL is not set", f"{PROFILE_VARIABLE}=production")


@pytest.mark.slow
def test_bentoml_serve_refuses_a_missing_broker_in_one_line(tmp_path):
    from tests.serving.test_startup_errors import error_lines, refusal_env, refused

    env = refusal_env(tmp_path, **{PROFILE_VARIABLE: "production"})
    # Server URLs nothing listens on: the settings refuse before anything is dialled.
    env |= {
        "SERVING_STORE_URL": "postgresql+psycopg://u:secret@127.0.0.1:1/none",
        "SERVING_MLFLOW_TRACKING_URI": "http://127.0.0.1:1",
    }
    env = {key: value for key, value in env.items() if key != "CHAT_BROKER_URL"}
    returncode, log = refused(env)
    assert returncode == 2
    [line] = error_lines(log)
    assert "CHAT_BROKER_URL is not set" in line and "secret" not in line

"""Secrets a deployment could start with that an attacker already knows: refused at start.

deploy/k8s/config.yaml ships `CHANGE-ME-...` values long enough to pass every length check
(`CHAT_JWT_SECRET: CHANGE-ME-to-32-or-more-random-characters` is 41 characters): applied
unchanged, anyone who read the repository could sign agent tokens or call /admin/reload.
"""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from models.settings_errors import SettingsProblem, load_settings
from serving.chat.settings import ChatSettings
from serving.settings import ServingSettings
from tests.serving.conftest import CHAT_SECRET
from tests.serving.test_startup_errors import error_lines, refusal_env, refused

MANIFEST = Path(__file__).resolve().parents[2] / "deploy" / "k8s" / "config.yaml"
SETTINGS = {"CHAT_JWT_SECRET": ChatSettings, "SERVING_ADMIN_API_KEY": ServingSettings}


def _template_secrets() -> dict[str, str]:
    """The Secret values the Kubernetes template ships."""
    documents = yaml.safe_load_all(MANIFEST.read_text(encoding="utf-8"))
    secrets = [doc for doc in documents if doc and doc.get("kind") == "Secret"]
    return {name: value for doc in secrets for name, value in doc["stringData"].items()}


@pytest.mark.parametrize("variable", sorted(SETTINGS))
def test_the_templates_placeholder_is_refused_naming_the_variable(monkeypatch, variable):
    placeholder = _template_secrets()[variable]
    monkeypatch.setenv("CHAT_JWT_SECRET", CHAT_SECRET)
    monkeypatch.setenv(variable, placeholder)
    with pytest.raises(SettingsProblem, match=variable) as refusal:
        load_settings(SETTINGS[variable])
    assert "placeholder" in str(refusal.value)
    assert placeholder not in str(refusal.value)  # never echoed into logs


@pytest.mark.parametrize(
    ("variable", "value", "problem"),
    [
        ("SERVING_ADMIN_API_KEY", "short-key", "shorter than 16"),
        ("SERVING_FEEDBACK_API_KEYS", '{"chat": "change-me-0123456789abc"}', "placeholder"),
        ("CHAT_WIDGET_KEYS", '{"acme": "CHANGE-ME-a-widget-key-of-40-characters"}', "placeholder"),
    ],
)
def test_weak_keys_are_refused_naming_the_variable(monkeypatch, variable, value, problem):
    monkeypatch.setenv("CHAT_JWT_SECRET", CHAT_SECRET)
    monkeypatch.setenv(variable, value)
    settings = ChatSettings if variable.startswith("CHAT_") else ServingSettings
    with pytest.raises(SettingsProblem, match=f"{variable}.*{problem}"):
        load_settings(settings)


@pytest.mark.slow
def test_bentoml_serve_with_the_templates_chat_secret_exits_naming_it(tmp_path):
    env = refusal_env(tmp_path, CHAT_JWT_SECRET=_template_secrets()["CHAT_JWT_SECRET"])
    returncode, log = refused(env)
    assert returncode == 2
    [line] = error_lines(log)
    assert "CHAT_JWT_SECRET" in line and "placeholder" in line

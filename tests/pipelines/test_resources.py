"""What Dagster's resource page shows of the alert targets: no credential, only its variable.

A webhook URL (Slack's, Teams') is the credential itself: whoever reads it can post alerts.
"""

from __future__ import annotations

import dagster as dg
import pytest

from monitoring.settings import MonitoringSettings
from pipelines.resources import AlertNotifier

HOOK = "https://hooks.example.com/services/T000/B000/very-secret-token"


@dg.asset
def webhook_seen(notifier: AlertNotifier) -> str:
    """What a run's resource holds once Dagster has resolved its config."""
    return notifier.webhook_url or ""


def test_the_webhook_url_is_an_env_var_on_the_resource_page(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("MONITORING_NOTIFIERS", '["log", "webhook"]')
    monkeypatch.setenv("MONITORING_WEBHOOK_URL", HOOK)
    notifier = AlertNotifier.from_settings(MonitoringSettings())
    # What the Dagster UI's resource page shows (ResourceSnap.configured_values).
    shown = notifier.get_resource_definition().config_schema.default_value_as_json_str
    assert "very-secret-token" not in shown
    assert '"webhook_url": {"env": "MONITORING_WEBHOOK_URL"}' in shown
    result = dg.materialize([webhook_seen], resources={"notifier": notifier})
    assert result.output_for_node("webhook_seen") == HOOK


def test_a_webhook_given_in_code_stays_a_plain_value(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.delenv("MONITORING_WEBHOOK_URL", raising=False)
    settings = MonitoringSettings(notifiers=["webhook"], webhook_url="http://127.0.0.1:9/hook")
    assert AlertNotifier.from_settings(settings).webhook_url == "http://127.0.0.1:9/hook"

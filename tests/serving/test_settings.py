import pytest
from pydantic import ValidationError

from serving.settings import ServingSettings


def test_serving_names_win_over_shared_names(monkeypatch):
    monkeypatch.setenv("CONVERSATION_STORE_URL", "sqlite:///shared.db")
    monkeypatch.setenv("SERVING_STORE_URL", "sqlite:///serving.db")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow:5000")
    settings = ServingSettings()
    assert settings.store_url == "sqlite:///serving.db"
    assert settings.mlflow_tracking_uri == "http://mlflow:5000"


def test_wildcard_cors_with_credentials_fails_at_start(monkeypatch):
    monkeypatch.setenv("SERVING_CORS_ORIGINS", '["*"]')
    monkeypatch.setenv("SERVING_CORS_ALLOW_CREDENTIALS", "true")
    with pytest.raises(ValidationError, match="SERVING_CORS_ORIGINS"):
        ServingSettings()


def test_bad_value_names_the_key(monkeypatch):
    monkeypatch.setenv("SERVING_MAX_BATCH_ITEMS", "0")
    with pytest.raises(ValidationError, match="max_batch_items"):
        ServingSettings()


@pytest.mark.parametrize(
    ("key", "value"),
    [
        ("SERVING_RECORD_TEXT", "everything"),
        ("SERVING_RECORD_QUEUE_SIZE", "0"),
        ("SERVING_RECORD_FLUSH_INTERVAL_S", "0"),
        ("SERVING_SHADOW_SHARE", "1.5"),
        ("SERVING_SHADOW_SHARE", "-0.1"),
        ("SERVING_SHADOW_QUEUE_SIZE", "0"),
    ],
)
def test_a_bad_prediction_log_setting_names_its_key(monkeypatch, key, value):
    from models.settings_errors import SettingsProblem
    from serving.startup import load_or_refuse

    monkeypatch.setenv(key, value)
    with pytest.raises(SettingsProblem, match=key):
        load_or_refuse(ServingSettings)

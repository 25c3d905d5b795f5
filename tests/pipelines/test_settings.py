import pytest
from pydantic import ValidationError

from pipelines.settings import PipelineSettings


def test_bad_config_value_fails_at_start_naming_the_key(monkeypatch):
    monkeypatch.setenv("MAX_TEXT_CHARS", "-5")
    with pytest.raises(ValidationError, match="max_text_chars"):
        PipelineSettings()


def test_stores_are_chosen_by_url(monkeypatch):
    monkeypatch.setenv("CONVERSATION_STORE_URL", "postgresql+psycopg://u:p@db/chat")
    monkeypatch.setenv("MLFLOW_TRACKING_URI", "http://mlflow.internal:5000")
    settings = PipelineSettings()
    assert settings.conversation_store_url.startswith("postgresql")
    assert settings.mlflow_tracking_uri == "http://mlflow.internal:5000"

"""Serving settings, read once at start; a bad value fails with its key named."""

from __future__ import annotations

import ipaddress
from enum import StrEnum
from typing import Any

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.profile import (
    Profile,
    profile_field,
    require_servers,
    store_and_registry,
)
from models.shared_settings import (
    MAX_TEXT_CHARS,
    MODEL_NAME,
    REGISTRY_URI,
    STORE_URL,
    TRACKING_URI,
    SharedVariable,
    is_placeholder,
    shared_field,
)

MIN_API_KEY_CHARS = 16
# A batch item's JSON: its text at up to 4 UTF-8 bytes a character, plus a context and punctuation.
BODY_BYTES_PER_TEXT_CHAR = 4
BODY_BYTES_PER_ITEM = 4096


class RecordText(StrEnum):
    """What a recorded HTTP prediction keeps of its message (SERVING_RECORD_TEXT)."""

    FULL = "full"  # the text, as the chat tier stores it
    HASH = "hash"  # its SHA-256 only: counts and repeats, never the words
    OFF = "off"  # neither


def _env(variable: SharedVariable[Any], field: str) -> Any:
    return shared_field(variable, "SERVING_", field)


class ServingSettings(BaseSettings):
    """Which model to serve, from where, and the HTTP policies around it."""

    # Errors name the key but never echo its value: some values are secrets.
    model_config = SettingsConfigDict(
        env_prefix="SERVING_",
        env_file=".env",
        extra="ignore",
        frozen=True,
        hide_input_in_errors=True,
    )

    profile: Profile = profile_field()
    # Shared with the pipeline and monitoring (models/shared_settings.py): SERVING_<FIELD> wins.
    model_name: str = _env(MODEL_NAME, "model_name")
    model_alias: str = "champion"
    mlflow_tracking_uri: str = _env(TRACKING_URI, "mlflow_tracking_uri")
    mlflow_registry_uri: str | None = _env(REGISTRY_URI, "mlflow_registry_uri")
    store_url: str = _env(STORE_URL, "store_url")
    max_text_chars: int = _env(MAX_TEXT_CHARS, "max_text_chars")
    max_batch_items: int = Field(1000, gt=0)
    top_k: int = Field(5, gt=0)
    poll_interval_s: float = Field(30.0, ge=0, description="0 turns registry polling off")
    admin_api_key: SecretStr | None = None
    # Name -> key (a JSON object); a JSON list names its keys key-1, key-2, ...
    feedback_api_keys: dict[str, SecretStr] = Field(default_factory=dict)
    max_body_bytes: int | None = Field(
        None, gt=0, description="unset: sized from max_batch_items and max_text_chars"
    )
    # Under BentoML's 30 s request timeout (serving/wiring.py), which answers a stalled body 504.
    body_timeout_s: float = Field(20.0, gt=0, lt=30, description="a slower body is a 408")
    cors_origins: list[str] = Field(default_factory=list)
    cors_allow_credentials: bool = False
    rate_limit_per_s: float = Field(0.0, ge=0, description="0 turns the rate limit off")
    rate_limit_burst: int = Field(20, gt=0)
    # Where workers and replicas share the rate limit; unset: the chat tier's Redis, if any,
    # else each worker counts on its own (serving/shared_ratelimit.py).
    rate_limit_redis_url: str | None = Field(
        None,
        validation_alias=AliasChoices("SERVING_RATE_LIMIT_REDIS_URL", "CHAT_BROKER_URL"),
    )
    # Peers (a reverse proxy) whose X-Client-Id header names the client; anyone else is counted
    # by address: a header a client sets itself would give it a fresh bucket per request.
    rate_limit_trusted_peers: list[str] = Field(default_factory=list)
    workers: int = Field(1, gt=0)
    max_micro_batch: int = Field(64, gt=0, description="most single requests classified together")
    access_log: bool = False
    tracing: bool = False
    # Every /predict and /batch_predict answer is recorded in the store's `predictions` table
    # off the response path (serving/prediction_log.py).
    record_predictions: bool = True
    record_text: RecordText = RecordText.FULL
    record_queue_size: int = Field(10_000, gt=0, description="records waiting; more are dropped")
    record_batch_size: int = Field(500, gt=0, description="records written per transaction")
    record_flush_interval_s: float = Field(1.0, gt=0, le=60)
    # While the registry has a `challenger`, this share of live predictions is scored by it too,
    # off the response path, and both answers recorded as a pair (serving/shadow.py).
    shadow_share: float = Field(0.1, ge=0, le=1, description="0 turns shadow scoring off")
    shadow_alias: str = "challenger"
    shadow_queue_size: int = Field(1000, gt=0, description="messages waiting; more are dropped")

    @field_validator("rate_limit_redis_url")
    @classmethod
    def _redis_only(cls, url: str | None) -> str | None:
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("must be a redis://, rediss:// or unix:// URL")
        return url or None

    @field_validator("rate_limit_trusted_peers")
    @classmethod
    def _addresses(cls, peers: list[str]) -> list[str]:
        try:
            # As the server reports a peer (`::1`, not `0:0:0:0:0:0:0:1`).
            return [str(ipaddress.ip_address(peer)) for peer in peers]
        except ValueError as error:
            raise ValueError(f"SERVING_RATE_LIMIT_TRUSTED_PEERS: {error}") from None

    @field_validator("admin_api_key")
    @classmethod
    def _strong_admin_key(cls, key: SecretStr | None) -> SecretStr | None:
        # It reloads models and gives `reviewed` labels, which may reach the frozen test split.
        if key is not None and len(key.get_secret_value()) < MIN_API_KEY_CHARS:
            raise ValueError(
                f"SERVING_ADMIN_API_KEY is shorter than {MIN_API_KEY_CHARS} characters"
            )
        if key is not None and is_placeholder(key.get_secret_value()):
            raise ValueError("SERVING_ADMIN_API_KEY is still the template's CHANGE-ME placeholder")
        return key

    @field_validator("feedback_api_keys", mode="before")
    @classmethod
    def _name_listed_keys(cls, keys: Any) -> Any:
        if isinstance(keys, list):
            return {f"key-{number}": key for number, key in enumerate(keys, start=1)}
        return keys

    @field_validator("feedback_api_keys")
    @classmethod
    def _strong_distinct_keys(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        values = [key.get_secret_value() for key in keys.values()]
        for name, key in keys.items():
            if not name or len(name) > 64 or name == "admin":
                raise ValueError(f"SERVING_FEEDBACK_API_KEYS: name {name[:64]!r} is not allowed")
            if len(key.get_secret_value()) < MIN_API_KEY_CHARS:
                raise ValueError(
                    f"SERVING_FEEDBACK_API_KEYS: key {name!r} is shorter than "
                    f"{MIN_API_KEY_CHARS} characters"
                )
            if is_placeholder(key.get_secret_value()):
                raise ValueError(
                    f"SERVING_FEEDBACK_API_KEYS: key {name!r} is a CHANGE-ME placeholder"
                )
        if len(set(values)) != len(values):
            raise ValueError("SERVING_FEEDBACK_API_KEYS: two names share one key")
        return keys

    @model_validator(mode="after")
    def _admin_key_is_not_a_feedback_key(self) -> ServingSettings:
        admin = self.admin_api_key.get_secret_value() if self.admin_api_key else None
        if admin is not None and any(
            key.get_secret_value() == admin for key in self.feedback_api_keys.values()
        ):
            raise ValueError(
                "SERVING_FEEDBACK_API_KEYS may not contain SERVING_ADMIN_API_KEY: "
                "the admin key gives reviewed labels"
            )
        return self

    @property
    def body_limit_bytes(self) -> int:
        """The largest request body read: SERVING_MAX_BODY_BYTES, else a full batch's size."""
        if self.max_body_bytes is not None:
            return self.max_body_bytes
        per_item = self.max_text_chars * BODY_BYTES_PER_TEXT_CHAR + BODY_BYTES_PER_ITEM
        return self.max_batch_items * per_item + 65_536

    @model_validator(mode="after")
    def _no_wildcard_with_credentials(self) -> ServingSettings:
        if self.cors_allow_credentials and "*" in self.cors_origins:
            raise ValueError(
                "SERVING_CORS_ORIGINS may not contain '*' when SERVING_CORS_ALLOW_CREDENTIALS is "
                "true: list the allowed origins"
            )
        return self

    @model_validator(mode="after")
    def _production_servers(self) -> ServingSettings:
        """Under SUPPORTLOOP_PROFILE=production every store must be a server (models/profile.py)."""
        require_servers(self, store_and_registry("store_url"))
        return self

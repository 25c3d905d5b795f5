"""Chat-tier settings (env CHAT_*), read once at start; a bad value fails with its key named."""

from __future__ import annotations

import re
from pathlib import Path

from pydantic import AliasChoices, Field, SecretStr, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from models.profile import POSTGRES_STORE, REDIS, Profile, profile_field, require_servers
from models.shared_settings import MAX_TEXT_CHARS, STORE_URL, is_placeholder, shared_field
from serving.chat.auth import TOKEN_MAX_LIFETIME_S
from serving.chat.protocol import MAX_MESSAGE_BYTES

REPO_ROOT = Path(__file__).resolve().parents[2]
MIN_SECRET_CHARS = 32
WIDGET_ORIGIN = re.compile(r"https?://[A-Za-z0-9.-]+(:[0-9]{1,5})?")
WIDGET_SITE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")  # serving/chat/auth.py, the site token's kid


class ChatSettings(BaseSettings):
    """Authentication, limits, bot policy and fan-out of the real-time chat tier."""

    model_config = SettingsConfigDict(
        env_prefix="CHAT_", env_file=".env", extra="ignore", frozen=True, populate_by_name=True
    )

    profile: Profile = profile_field()
    enabled: bool = True
    # No default: a chat tier with a guessable signing key is worse than none.
    jwt_secret: SecretStr | None = None
    token_ttl_s: int = Field(8 * 3600, gt=0)
    token_max_lifetime_s: int = Field(
        TOKEN_MAX_LIFETIME_S, gt=0, description="refuse tokens living longer (exp - iat)"
    )
    dev_login: bool = Field(
        False, description="serve POST /chat/dev/token (local demos only: anyone gets a token)"
    )
    widget_origins: list[str] = Field(
        default_factory=list,
        description="origins whose pages may show the chat widget (CSP frame-ancestors)",
    )
    widget_keys: dict[str, SecretStr] = Field(
        default_factory=dict,
        description="{site: key}: each widget site signs its customers' site tokens with its key",
    )
    widget_session_ttl_s: int = Field(
        3600, gt=0, description="lifetime of the chat token a site token is exchanged for"
    )
    store_url: str = Field(
        STORE_URL.default,
        validation_alias=AliasChoices("CHAT_STORE_URL", "SERVING_STORE_URL", STORE_URL.name),
    )
    broker_url: str | None = Field(None, description="redis://… to share rooms across workers")
    max_frame_bytes: int = Field(16_384, gt=0, le=MAX_MESSAGE_BYTES)  # the socket reads no more
    max_content_chars: int = shared_field(MAX_TEXT_CHARS, "CHAT_", "max_content_chars")
    # Limits are per user, shared by every socket the user holds in this worker.
    rate_per_s: float = Field(5.0, gt=0, description="frames per second per user")
    rate_burst: int = Field(20, gt=0)
    max_sockets_per_user: int = Field(
        10, gt=0, description="open sockets per user per worker; more are closed with 4429"
    )
    # A resume replays up to replay_limit events from the store: its own, slower bucket.
    resume_rate_per_s: float = Field(0.5, gt=0, description="resume frames per second per user")
    resume_burst: int = Field(5, gt=0)
    heartbeat_interval_s: float = Field(20.0, gt=0)
    heartbeat_timeout_s: float = Field(60.0, gt=0)
    store_threads: int = Field(
        4, gt=0, description="threads for store reads (and writes, off SQLite)"
    )
    replay_limit: int = Field(1000, gt=0, description="most events replayed by one resume")
    responses_path: Path = REPO_ROOT / "data" / "responses.yaml"
    classify_timeout_s: float = Field(5.0, gt=0)
    intent_url: str | None = Field(
        None, description="classify over HTTP at this intent service instead of in-process"
    )
    handoff_after_fallbacks: int = Field(2, gt=0)
    frustration_threshold: float = Field(0.6, gt=0, le=1)

    @field_validator("jwt_secret")
    @classmethod
    def _long_enough(cls, secret: SecretStr | None) -> SecretStr | None:
        if secret is not None and len(secret.get_secret_value()) < MIN_SECRET_CHARS:
            raise ValueError(
                f"CHAT_JWT_SECRET must be at least {MIN_SECRET_CHARS} characters for HS256"
            )
        if secret is not None and is_placeholder(secret.get_secret_value()):
            raise ValueError("CHAT_JWT_SECRET is still the template's CHANGE-ME placeholder")
        return secret

    @field_validator("broker_url")
    @classmethod
    def _redis_only(cls, url: str | None) -> str | None:
        if url and not url.startswith(("redis://", "rediss://", "unix://")):
            raise ValueError("CHAT_BROKER_URL must be a redis:// or rediss:// URL")
        return url or None

    @field_validator("widget_origins")
    @classmethod
    def _origins(cls, origins: list[str]) -> list[str]:
        # Each is a CSP source: an origin exactly, so a value cannot widen or inject directives.
        for origin in origins:
            if not WIDGET_ORIGIN.fullmatch(origin):
                raise ValueError(
                    f"CHAT_WIDGET_ORIGINS: {origin[:80]!r} is not an origin like "
                    "https://shop.example.com or http://127.0.0.1:8080"
                )
        return origins

    @field_validator("widget_keys")
    @classmethod
    def _site_keys(cls, keys: dict[str, SecretStr]) -> dict[str, SecretStr]:
        for site, key in keys.items():
            if not WIDGET_SITE.fullmatch(site):
                raise ValueError(
                    f"CHAT_WIDGET_KEYS: site {site[:40]!r} is not 1-32 of a-z, 0-9, _ and -"
                )
            if len(key.get_secret_value()) < MIN_SECRET_CHARS:
                raise ValueError(
                    f"CHAT_WIDGET_KEYS: the key of {site!r} must be at least "
                    f"{MIN_SECRET_CHARS} characters"
                )
            if is_placeholder(key.get_secret_value()):
                raise ValueError(
                    f"CHAT_WIDGET_KEYS: the key of {site!r} is a CHANGE-ME placeholder"
                )
        return keys

    @model_validator(mode="after")
    def _site_keys_are_not_the_secret(self) -> ChatSettings:
        """A site holding CHAT_JWT_SECRET could sign agent tokens: its key must differ."""
        secret = self.jwt_secret.get_secret_value() if self.jwt_secret else None
        for site, key in self.widget_keys.items():
            if key.get_secret_value() == secret:
                raise ValueError(f"CHAT_WIDGET_KEYS: the key of {site!r} is CHAT_JWT_SECRET")
        return self

    @model_validator(mode="after")
    def _issued_tokens_fit_the_lifetime(self) -> ChatSettings:
        """Tokens this tier issues must pass its own lifetime check."""
        for name in ("token_ttl_s", "widget_session_ttl_s"):
            if getattr(self, name) > self.token_max_lifetime_s:
                raise ValueError(
                    f"CHAT_{name.upper()} exceeds CHAT_TOKEN_MAX_LIFETIME_S "
                    f"({self.token_max_lifetime_s})"
                )
        return self

    def site_keys(self) -> dict[str, str]:
        """The widget sites' keys, in the clear (for verifying site tokens)."""
        return {site: key.get_secret_value() for site, key in self.widget_keys.items()}

    @model_validator(mode="after")
    def _production_servers(self) -> ChatSettings:
        """Under SUPPORTLOOP_PROFILE=production rooms fan out through Redis, rows go to PostgreSQL.

        Without a broker each worker or replica would hold rooms of its own (models/profile.py).
        """
        if self.enabled:
            require_servers(self, {"store_url": POSTGRES_STORE, "broker_url": REDIS})
        return self

    def require_secret(self) -> str:
        """The signing key, or a start-up error naming the variable."""
        if self.jwt_secret is None:
            raise ValueError(
                "CHAT_JWT_SECRET is not set: set it (32+ characters) or CHAT_ENABLED=false"
            )
        return self.jwt_secret.get_secret_value()

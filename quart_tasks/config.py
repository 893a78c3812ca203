"""Configuration classes, read from the environment (and `.env` in development)."""

from __future__ import annotations

import os
from typing import Any, Literal

from limits import parse
from pydantic import Field, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

DEFAULT_SECRET_KEY = "insecure-development-secret-change-me"
DEFAULT_API_PASS = "admin"
DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///instance/tasks.db"
MIN_SECRET_BYTES = 32

Environment = Literal["development", "testing", "production"]


class ConfigError(RuntimeError):
    """The configuration cannot be used; the message says what to set."""


class Config(BaseSettings):
    """Settings shared by every environment; each field is an environment variable."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True)

    APP_ENV: Environment = "development"
    TESTING: bool = False
    SECRET_KEY: str = DEFAULT_SECRET_KEY
    DATABASE_URL: str = DEFAULT_DATABASE_URL
    DB_POOL_SIZE: int = Field(default=10, ge=1)
    DB_MAX_OVERFLOW: int = Field(default=0, ge=0)
    DB_POOL_TIMEOUT: float = Field(default=5.0, gt=0)
    DB_CONNECT_TIMEOUT: float = Field(default=5.0, gt=0)
    DB_POOL_PRE_PING: bool = False
    DB_FAST_PATH: bool = True
    DB_BEHIND_POOLER: bool = False
    EVENTS_LISTEN_URL: str = ""
    """On PostgreSQL, run what task requests can straight on asyncpg, in few statements."""
    READY_TIMEOUT: float = Field(default=1.0, gt=0)
    RETRY_AFTER_SECONDS: int = Field(default=5, ge=1)
    SQLITE_BUSY_TIMEOUT_MS: int = Field(default=5000, ge=0)
    SECRET_KEY_FALLBACKS: str = ""
    JWT_ISSUER: str = "quart-tasks"
    JWT_EXP_SECONDS: int = Field(default=3600, gt=0)
    REFRESH_TOKEN_EXP_SECONDS: int = Field(default=30 * 24 * 3600, gt=0)
    SESSION_PURGE_EVERY: int = Field(default=100, ge=0)
    AUTH_CACHE_SECONDS: float = Field(default=2.0, ge=0)
    API_USER: str = Field(default="admin", min_length=1, max_length=64)
    API_PASS: str = Field(default=DEFAULT_API_PASS, min_length=1)
    REGISTRATION_OPEN: bool = False
    ARGON2_TIME_COST: int = Field(default=2, ge=1)
    ARGON2_MEMORY_KIB: int = Field(default=19 * 1024, ge=8)
    ARGON2_PARALLELISM: int = Field(default=1, ge=1)
    LOGIN_FAILURES_PER_PAIR: str = "5/minute"
    LOGIN_FAILURES_PER_ADDRESS: str = "100/hour"
    LOGIN_FAILURES_PER_USERNAME: str = "20/hour"
    LOGIN_DELAY_MAX_SECONDS: float = Field(default=10.0, ge=0)
    RATE_LIMIT_KEY_PREFIX: str = "quart-tasks"
    IDEMPOTENCY_TTL_SECONDS: int = Field(default=24 * 3600, gt=0)
    IDEMPOTENCY_WAIT_MS: int = Field(default=2000, gt=0)
    IDEMPOTENCY_PURGE_EVERY: int = Field(default=100, ge=0)
    RATE_LIMIT: str = ""
    EVENTS_RETENTION_SECONDS: int = Field(default=24 * 3600, gt=0)
    EVENTS_RETENTION_COUNT: int = Field(default=100_000, gt=0)
    EVENTS_PURGE_EVERY: int = Field(default=100, ge=0)
    EVENTS_QUEUE_SIZE: int = Field(default=256, ge=1)
    EVENTS_HEARTBEAT_SECONDS: float = Field(default=15.0, gt=0)
    EVENTS_POLL_SECONDS: float = Field(default=1.0, gt=0)
    EVENTS_DIRECT_WRITES: bool = True
    EVENTS_BACKLOG_BYTES: int = Field(default=64 * 1024, ge=0)
    GC_GEN0_THRESHOLD: int = Field(default=50_000, ge=0)
    REDIS_URL: str | None = None
    REDIS_TIMEOUT: float = Field(default=0.5, gt=0)
    METRICS_ENABLED: bool = False
    OTEL_EXPORTER_OTLP_ENDPOINT: str = ""
    OTEL_EXPORTER_OTLP_TRACES_ENDPOINT: str = ""
    TRUSTED_PROXIES: str = ""
    ALLOW_SQLITE_IN_PRODUCTION: bool = False
    LOG_FORMAT: Literal["json", "text", ""] = ""
    CORS_ORIGINS: str = ""
    LOG_LEVEL: Literal["DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL"] = "INFO"
    MAX_CONTENT_LENGTH: int = Field(default=1024 * 1024, gt=0)
    COMPRESS_ENCODINGS: str = "zstd,br,gzip"
    COMPRESS_MIN_BYTES: int = Field(default=1024, ge=0)
    LIST_MAX_OFFSET: int = Field(default=10_000, ge=0)
    """The deepest offset a list's `page` reaches (its first row's); past it, 400 and
    cursors, which cost the same at any depth."""
    LIST_SEARCH_TOTAL_LIMIT: int = Field(default=1_000, ge=1)
    """How many matches of `q` a list counts exactly; past it `total` is a lower bound."""

    @field_validator(
        "LOGIN_FAILURES_PER_PAIR",
        "LOGIN_FAILURES_PER_USERNAME",
        "LOGIN_FAILURES_PER_ADDRESS",
        "RATE_LIMIT",
    )
    @classmethod
    def _rate_limit(cls, value: str) -> str:
        try:
            if value:
                parse(value)
        except ValueError:
            raise ValueError("expected a rate such as '5/minute'") from None
        return value

    def as_mapping(self) -> dict[str, Any]:
        """The settings as Quart config keys."""
        settings = self.model_dump()
        if not settings["LOG_FORMAT"]:
            settings["LOG_FORMAT"] = "json" if self.APP_ENV == "production" else "text"
        return settings


class DevelopmentConfig(Config):
    """A laptop: SQLite file by default, `.env` read if present."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore", frozen=True)

    APP_ENV: Environment = "development"


class TestingConfig(Config):
    """The test suite: an in-memory SQLite database unless told otherwise."""

    APP_ENV: Environment = "testing"
    TESTING: bool = True
    DATABASE_URL: str = "sqlite+aiosqlite:///:memory:"


class ProductionConfig(Config):
    """Refuses to start with any default that would be unsafe in front of users."""

    APP_ENV: Environment = "production"

    @model_validator(mode="after")
    def _refuse_unsafe_defaults(self) -> ProductionConfig:
        problems = []
        secret = self.SECRET_KEY
        if secret == DEFAULT_SECRET_KEY or len(secret.encode()) < MIN_SECRET_BYTES:
            problems.append(
                f"set SECRET_KEY to a random value of at least {MIN_SECRET_BYTES} bytes "
                '(python -c "import secrets; print(secrets.token_urlsafe(48))")'
            )
        if self.API_PASS == DEFAULT_API_PASS:
            problems.append("set API_PASS to something other than the default password")
        if self.DATABASE_URL.startswith("sqlite") and not self.ALLOW_SQLITE_IN_PRODUCTION:
            problems.append(
                "set DATABASE_URL to PostgreSQL (postgresql+asyncpg://...), or "
                "ALLOW_SQLITE_IN_PRODUCTION=true for a single-process deployment"
            )
        if problems:
            raise ConfigError("refusing to start with APP_ENV=production: " + "; ".join(problems))
        return self


CONFIG_CLASSES: dict[str, type[Config]] = {
    "development": DevelopmentConfig,
    "testing": TestingConfig,
    "production": ProductionConfig,
}


def load_config() -> Config:
    """Build the config class that `APP_ENV` names, from the environment."""
    app_env = os.environ.get("APP_ENV", "development")
    try:
        config_class = CONFIG_CLASSES[app_env]
    except KeyError:
        raise ConfigError(
            f"APP_ENV must be one of {', '.join(CONFIG_CLASSES)}, not {app_env!r}"
        ) from None
    try:
        return config_class()
    except ValidationError as error:
        problems = "; ".join(f"{'.'.join(map(str, e['loc']))}: {e['msg']}" for e in error.errors())
        raise ConfigError(f"invalid configuration: {problems}") from None

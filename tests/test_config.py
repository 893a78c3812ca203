"""Configuration from the environment, and production's refusal of unsafe defaults."""

from __future__ import annotations

from pathlib import Path

import pytest

from quart_tasks import config as settings
from quart_tasks import create_app
from quart_tasks.config import (
    DEFAULT_SECRET_KEY,
    ConfigError,
    DevelopmentConfig,
    ProductionConfig,
    load_config,
)

STRONG_SECRET = "s" * 48


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    for name in (
        "APP_ENV",
        "SECRET_KEY",
        "API_PASS",
        "DATABASE_URL",
        "JWT_EXP_SECONDS",
        "ALLOW_SQLITE_IN_PRODUCTION",
    ):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.chdir(tmp_path)  # no stray .env


@pytest.mark.parametrize(
    ("app_env", "config_class"),
    [
        (None, DevelopmentConfig),
        ("development", DevelopmentConfig),
        ("testing", settings.TestingConfig),
    ],
)
def test_app_env_picks_the_config_class(
    monkeypatch: pytest.MonkeyPatch, app_env: str | None, config_class: type
) -> None:
    if app_env is not None:
        monkeypatch.setenv("APP_ENV", app_env)

    assert type(load_config()) is config_class


def test_variables_are_read_and_typed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_EXP_SECONDS", "60")
    monkeypatch.setenv("DATABASE_URL", "sqlite+aiosqlite:///elsewhere.db")

    config = load_config()

    assert config.JWT_EXP_SECONDS == 60
    assert config.DATABASE_URL == "sqlite+aiosqlite:///elsewhere.db"


def test_development_reads_a_dot_env_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: object
) -> None:
    with open(".env", "w") as env_file:
        env_file.write("JWT_ISSUER=from-dot-env\n")

    assert load_config().JWT_ISSUER == "from-dot-env"


def test_an_unknown_app_env_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "staging")

    with pytest.raises(ConfigError, match="APP_ENV must be one of"):
        load_config()


def test_a_malformed_value_is_refused_by_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_EXP_SECONDS", "an hour")

    with pytest.raises(ConfigError, match="JWT_EXP_SECONDS"):
        load_config()


@pytest.mark.parametrize(
    ("secret", "password", "complaint"),
    [
        (DEFAULT_SECRET_KEY, "a-real-password", "SECRET_KEY"),
        ("too-short", "a-real-password", "SECRET_KEY"),
        (STRONG_SECRET, "admin", "API_PASS"),
    ],
)
def test_production_refuses_unsafe_defaults(
    monkeypatch: pytest.MonkeyPatch, secret: str, password: str, complaint: str
) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", secret)
    monkeypatch.setenv("API_PASS", password)

    with pytest.raises(ConfigError, match=f"set {complaint}"):
        load_config()
    with pytest.raises(ConfigError):
        create_app()


def test_production_refuses_sqlite_unless_allowed(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET)
    monkeypatch.setenv("API_PASS", "a-real-password")

    with pytest.raises(ConfigError, match="set DATABASE_URL to PostgreSQL"):
        load_config()
    monkeypatch.setenv("ALLOW_SQLITE_IN_PRODUCTION", "true")
    assert load_config().DATABASE_URL.startswith("sqlite")


def test_production_starts_with_safe_values(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("APP_ENV", "production")
    monkeypatch.setenv("SECRET_KEY", STRONG_SECRET)
    monkeypatch.setenv("API_PASS", "a-real-password")
    monkeypatch.setenv("DATABASE_URL", "postgresql+asyncpg://app@db.internal/tasks")

    config = load_config()

    assert isinstance(config, ProductionConfig)
    assert create_app().config["APP_ENV"] == "production"


def test_create_app_takes_an_explicit_config() -> None:
    app = create_app(settings.TestingConfig(JWT_ISSUER="explicit"))

    assert app.config["JWT_ISSUER"] == "explicit"
    assert app.config["TESTING"] is True

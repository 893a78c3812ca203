"""Apps for tests: settings, a fresh schema, an app started as Hypercorn starts it."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

from quart import Quart

from quart_tasks import create_app
from quart_tasks.config import TestingConfig
from quart_tasks.models import Base
from quart_tasks.services import services_of
from quart_tasks.storage.driver import Driver
from quart_tasks.storage.sessions import Database
from quart_tasks.tasks.log import rounds
from tests.helpers.servers import postgres_database
from tests.helpers.support import TEST_DATABASE_URL, TEST_SECRET_KEY, engine_for

ADMIN = {"username": "admin", "password": "admin"}
Login = Callable[[str, str], Awaitable[dict[str, Any]]]


class MakeUser(Protocol):
    """The `make_user` fixture: a new user, logged in; their login response."""

    def __call__(self, username: str, password: str = ...) -> Awaitable[dict[str, Any]]: ...


def app_database(app: Quart) -> Database:
    db: Database = services_of(app).database
    return db


def settings_for_test(tmp_path: Path, **overrides: Any) -> TestingConfig:
    """Settings for a test: its own database, cheap password hashing, its own counters."""
    settings: dict[str, Any] = {
        "DATABASE_URL": TEST_DATABASE_URL or f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}",
        "SECRET_KEY": TEST_SECRET_KEY,
        "API_USER": ADMIN["username"],
        "API_PASS": ADMIN["password"],
        "ARGON2_TIME_COST": 1,
        "ARGON2_MEMORY_KIB": 8,
        "RATE_LIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}",
    }
    settings.update(overrides)
    return TestingConfig(**settings)


async def reset_schema(database_url: str) -> None:
    engine = engine_for(database_url)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(Base.metadata.drop_all)
            await connection.run_sync(Base.metadata.create_all)
    finally:
        await engine.dispose()


@contextlib.asynccontextmanager
async def serving(config: TestingConfig, *, fresh_schema: bool = True) -> AsyncIterator[Quart]:
    """An app for `config`, started as Hypercorn would start it (before/after serving)."""
    if fresh_schema:
        await reset_schema(config.DATABASE_URL)
    app = create_app(config)
    async with app.test_app():
        yield app


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    database_url: str


@contextlib.asynccontextmanager
async def app_on_postgres(tmp_path: Path, **settings: Any) -> AsyncIterator[Quart]:
    """An app on a throwaway PostgreSQL database, with the fast path on: what it tests."""
    settings = {"DB_FAST_PATH": True, **settings}
    async with (
        postgres_database() as url,
        serving(settings_for_test(tmp_path, DATABASE_URL=url, **settings)) as app,
    ):
        yield app


def reader_of(app: Quart) -> Driver:
    reader = app_database(app).driver
    assert reader is not None, "PostgreSQL reads go through the driver"
    return reader


async def position_events(app: Quart) -> None:
    """On PostgreSQL, give every committed event its position now, as the app's sequencer
    soon would (`tasks.log.rounds`); on SQLite an event has one from the start."""
    database = app_database(app)
    if not database.is_postgresql or database.sessionmaker is None:
        return
    async with database.sessionmaker() as session:
        await rounds.take_round(session)

"""Fixtures: an app on a fresh database per test, a client, and logged-in callers.

`TEST_DATABASE_URL` picks the database (a SQLite file per test when unset); the
same suite runs on both.
"""

from __future__ import annotations

import contextlib
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import httpx
import pytest
from quart import Quart
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import create_async_engine

from quart_tasks import create_app
from quart_tasks.config import TestingConfig
from quart_tasks.models import Base, Task
from quart_tasks.services import services_of
from quart_tasks.storage.sessions import Database
from tests.live import fresh_database_url, running_server
from tests.support import TEST_DATABASE_URL, TEST_SECRET_KEY, Client

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
    engine = create_async_engine(database_url)
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


@pytest.fixture
def config(tmp_path: Path) -> TestingConfig:
    return settings_for_test(tmp_path)


@pytest.fixture
async def app(config: TestingConfig) -> AsyncIterator[Quart]:
    async with serving(config) as app:
        yield app


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


@pytest.fixture
def login(client: Client) -> Login:
    async def log_in(username: str, password: str) -> dict[str, Any]:
        response = await client.post(
            "/api/login", json={"username": username, "password": password}
        )
        assert response.status_code == 200, await response.get_data()
        body: dict[str, Any] = await response.get_json()
        return body

    return log_in


def bearer(tokens: dict[str, Any]) -> dict[str, str]:
    return {"Authorization": f"Bearer {tokens['access_token']}"}


@pytest.fixture
async def admin_auth(login: Login) -> dict[str, str]:
    return bearer(await login(ADMIN["username"], ADMIN["password"]))


@pytest.fixture
def make_user(client: Client, admin_auth: dict[str, str], login: Login) -> MakeUser:
    """Create a user through the API and log them in: their login response."""

    async def make(username: str, password: str = "correct horse battery") -> dict[str, Any]:
        response = await client.post(
            "/api/users", json={"username": username, "password": password}, headers=admin_auth
        )
        assert response.status_code == 201, await response.get_data()
        return await login(username, password)

    return make


@pytest.fixture
async def alice_tokens(make_user: MakeUser) -> dict[str, Any]:
    return await make_user("alice")


@pytest.fixture
def auth(alice_tokens: dict[str, Any]) -> dict[str, str]:
    """A regular user's headers: most tests act as alice."""
    return bearer(alice_tokens)


@pytest.fixture
def token(alice_tokens: dict[str, Any]) -> str:
    return str(alice_tokens["access_token"])


@pytest.fixture
def count_tasks(app: Quart) -> Callable[[], Awaitable[int]]:
    """How many tasks the database holds, read past the API."""

    async def count() -> int:
        async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
            return int(await session.scalar(select(func.count()).select_from(Task)) or 0)

    return count


@dataclass(frozen=True)
class LiveServer:
    base_url: str
    database_url: str


@pytest.fixture(scope="session")
def live_session(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """A real `quart-tasks serve` (Hypercorn) process on a migrated database of its own."""
    workdir = tmp_path_factory.mktemp("live")
    with fresh_database_url(workdir) as url, running_server(url, workdir) as base_url:
        yield LiveServer(base_url=base_url, database_url=url)


@pytest.fixture
def live(live_session: LiveServer) -> LiveServer:
    """The live server, ready: another test may have restarted its database, and a
    pool renews itself on its first failed query, which the checks here spend.

    `/readyz` checks one pooled connection, a login goes through the session as
    tests do, so both must pass: once on PostgreSQL, 2 s after a database
    restart, a readiness check passed and the next login answered 503."""
    base_url = live_session.base_url
    for _ in range(50):
        if (
            httpx.get(f"{base_url}/readyz", timeout=5).status_code == 200
            and httpx.post(f"{base_url}/api/login", json=ADMIN, timeout=5).status_code == 200
        ):
            return live_session
        time.sleep(0.2)
    raise RuntimeError("the live server did not become ready")


@pytest.fixture
def live_server(live: LiveServer) -> str:
    return live.base_url


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--fuzz-examples",
        type=int,
        default=300,
        help="Schemathesis examples per API operation, half valid, half invalid [300].",
    )

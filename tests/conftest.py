"""Fixtures: an app on a fresh database per test, a client, and logged-in callers.

`TEST_DATABASE_URL` picks the database (a SQLite file per test when unset); the
same suite runs on both. What the fixtures are built from is in `tests/helpers/`.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from quart import Quart
from sqlalchemy import func, select

from quart_tasks.config import TestingConfig
from quart_tasks.models import Task
from tests.helpers.apps import (
    ADMIN,
    LiveServer,
    Login,
    MakeUser,
    app_database,
    bearer,
    serving,
    settings_for_test,
)
from tests.helpers.servers import fresh_database_url, running_server
from tests.helpers.support import Client
from tests.helpers.users import DEFAULT_PASSWORD, insert_user


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


@pytest.fixture
async def admin_auth(login: Login) -> dict[str, str]:
    return bearer(await login(ADMIN["username"], ADMIN["password"]))


@pytest.fixture
def make_user(app: Quart, login: Login) -> MakeUser:
    """A new user, inserted (`helpers.users`), then logged in: their login response."""

    async def make(username: str, password: str = DEFAULT_PASSWORD) -> dict[str, Any]:
        await insert_user(app, username, password)
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

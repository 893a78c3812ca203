"""Fixtures: an app on a fresh database per test, a client, and a logged-in caller.

`TEST_DATABASE_URL` picks the database (in-memory SQLite when unset); the same
suite runs on both.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest
from quart import Quart
from sqlalchemy import func, select

from quart_tasks import create_app
from quart_tasks.config import TestingConfig
from quart_tasks.database import Database
from quart_tasks.models import Base, Task

from .live import fresh_database_url, running_server
from .support import TEST_DATABASE_URL, TEST_SECRET_KEY, Client


def app_database(app: Quart) -> Database:
    db: Database = app.extensions["database"]
    return db


@pytest.fixture
def config() -> TestingConfig:
    return TestingConfig(
        DATABASE_URL=TEST_DATABASE_URL or "sqlite+aiosqlite:///:memory:",
        SECRET_KEY=TEST_SECRET_KEY,
        API_USER="admin",
        API_PASS="admin",
    )


@pytest.fixture
async def app(config: TestingConfig) -> AsyncIterator[Quart]:
    app = create_app(config)
    async with app.test_app():
        async with app_database(app).engine.begin() as connection:  # type: ignore[union-attr]
            await connection.run_sync(Base.metadata.drop_all)
            await connection.run_sync(Base.metadata.create_all)
        yield app


@pytest.fixture
def client(app: Quart) -> Client:
    return app.test_client()


@pytest.fixture
async def token(client: Client) -> str:
    response = await client.post("/api/login", json={"username": "admin", "password": "admin"})
    assert response.status_code == 200
    body = await response.get_json()
    return str(body["access_token"])


@pytest.fixture
def auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@pytest.fixture
def count_tasks(app: Quart) -> Callable[[], Awaitable[int]]:
    """How many tasks the database holds, read past the API."""

    async def count() -> int:
        async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
            return int(await session.scalar(select(func.count()).select_from(Task)) or 0)

    return count


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A real `quart-tasks serve` (Hypercorn) process on a migrated database of its own."""
    workdir = tmp_path_factory.mktemp("live")
    with fresh_database_url(workdir) as url, running_server(url, workdir) as base_url:
        yield base_url

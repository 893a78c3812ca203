"""The verified-session cache: fewer queries, and revocation still takes effect."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import delete, event

from quart_tasks.auth.session_cache import SessionCache
from quart_tasks.models import User

from .conftest import ADMIN, app_database, bearer, serving, settings_for_test


@contextmanager
def session_queries(app: Quart) -> Iterator[list[str]]:
    """The statements that look a token's session up, while the block runs."""
    engine = app_database(app).engine.sync_engine  # type: ignore[union-attr]
    seen: list[str] = []

    def capture(_conn: Any, _cursor: Any, statement: str, *_: Any) -> None:
        if "token_families" in statement and "revoked_at IS NULL" in statement:
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", capture)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", capture)


@pytest.mark.parametrize(
    ("cache_seconds", "session_queries_for_three"),
    [(60, 1), (0, 3)],
    ids=["cached: one query", "no cache: every request asks"],
)
async def test_the_session_query_runs_once_per_cache_period(
    tmp_path: Path, cache_seconds: int, session_queries_for_three: int
) -> None:
    async with serving(settings_for_test(tmp_path, AUTH_CACHE_SECONDS=cache_seconds)) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        with session_queries(app) as seen:
            for _ in range(3):
                assert (await client.get("/api/tasks", headers=auth)).status_code == 200

    assert len(seen) == session_queries_for_three


async def test_logout_takes_effect_at_once_despite_the_cache(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path, AUTH_CACHE_SECONDS=60)) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        assert (await client.get("/api/tasks", headers=auth)).status_code == 200

        await client.post("/api/logout", headers=auth)

        assert (await client.get("/api/tasks", headers=auth)).status_code == 401


async def test_a_deleted_user_is_refused_once_the_entry_expires(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path, AUTH_CACHE_SECONDS=0.3)) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        assert (await client.get("/api/tasks", headers=auth)).status_code == 200
        async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
            await session.execute(delete(User))
            await session.commit()

        await asyncio.sleep(0.4)

        assert (await client.get("/api/tasks", headers=auth)).status_code == 401


def test_the_cache_is_bounded_and_forgets_whole_families() -> None:
    cache: SessionCache[str] = SessionCache(seconds=60, max_entries=2)
    cache.put(1, "a", "one")
    cache.put(2, "b", "two")
    cache.put(3, "c", "three")
    cache.forget_family("c")

    assert (cache.get(1, "a"), cache.get(2, "b"), cache.get(3, "c")) == (None, "two", None)

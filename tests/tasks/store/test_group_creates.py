"""`tasks/store/group_creates.py`: creates that arrive together are written together,
each still getting its own task.

These run on the local PostgreSQL whatever backend the suite runs on: the fast
store, which groups creates, exists only there.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from quart import Quart
from sqlalchemy import text

from quart_tasks.services import services_of
from quart_tasks.tasks.store.fast import FastTaskStore
from quart_tasks.tasks.store.group_creates import GroupCreates
from tests.helpers.apps import ADMIN, app_database, app_on_postgres, bearer
from tests.helpers.servers import LOCAL_POSTGRES
from tests.helpers.statements import first_word, statements_run


# No housekeeping statements; the caller's session remembered, so creates go to the driver.
def group_creates(app: Quart) -> GroupCreates:
    """The app's fast store's `GroupCreates`."""
    store = services_of(app).tasks
    assert isinstance(store, FastTaskStore)
    return store.group_creates


ON_THE_DRIVER = {
    "EVENTS_PURGE_EVERY": 0,
    "IDEMPOTENCY_PURGE_EVERY": 0,
    "SESSION_PURGE_EVERY": 0,
    "AUTH_CACHE_SECONDS": 60,
}


async def stored(app: object, statement: str) -> list[tuple[Any, ...]]:
    async with app_database(app).sessionmaker() as session:  # type: ignore[arg-type, misc]
        return [tuple(row) for row in await session.execute(text(statement))]


@contextlib.asynccontextmanager
async def owner_locked(app: Quart, owner_id: int = 1) -> AsyncIterator[None]:
    """The owner's row, locked by another connection: a create for them waits on it
    (its foreign key check), and the creates behind it gather in the next batch."""
    database_name = app_database(app).engine.url.database  # type: ignore[union-attr]
    blocker = await asyncpg.connect(**LOCAL_POSTGRES, database=database_name)
    transaction = blocker.transaction()
    await transaction.start()
    await blocker.execute("SELECT 1 FROM users WHERE id = $1 FOR UPDATE", owner_id)
    try:
        yield
    finally:
        await transaction.rollback()
        await blocker.close()


async def test_concurrent_creates_share_statements_and_each_gets_its_own_task(
    tmp_path: Path,
) -> None:
    async with app_on_postgres(tmp_path, **ON_THE_DRIVER) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        assert (await client.get("/api/tasks", headers=auth)).status_code == 200  # now cached
        titles = [f"task {n}" for n in range(20)]
        with statements_run(app) as sent:
            responses = await asyncio.gather(
                *(
                    client.post(
                        "/api/tasks", json={"title": title, "done": n % 2 == 0}, headers=auth
                    )
                    for n, title in enumerate(titles)
                )
            )
        bodies = [await response.get_json() for response in responses]
        events = await stored(app, "SELECT task_id, payload FROM task_events ORDER BY id")
        counted = await stored(app, "SELECT sum(total) FROM task_counts")

    assert [response.status_code for response in responses] == [201] * 20
    assert [body["title"] for body in bodies] == titles, "each request got its own task"
    assert [body["done"] for body in bodies] == [n % 2 == 0 for n in range(20)]
    assert len({body["id"] for body in bodies}) == 20
    assert all(
        r.headers["Location"] == f"/api/tasks/{b['id']}"
        for r, b in zip(responses, bodies, strict=True)
    )
    writes = [statement for statement, _ in sent if first_word(statement) == "WITH"]
    assert 1 <= len(writes) <= 5, "written together, not one by one"
    assert {task_id: json.loads(payload) for task_id, payload in events} == {
        body["id"]: body for body in bodies
    }, "one event each, carrying the task as it was answered"
    assert counted == [(20,)]


async def test_creates_wait_for_the_batch_being_written_and_a_cancelled_one_is_dropped(
    tmp_path: Path,
) -> None:
    async with app_on_postgres(tmp_path) as app:
        gathered = group_creates(app)
        now = datetime.now(UTC)
        async with owner_locked(app):
            first = asyncio.create_task(gathered.create(1, "first", False, now))
            await asyncio.sleep(0.2)  # written, and waiting on the row locked above
            later = [
                asyncio.create_task(gathered.create(1, t, False, now)) for t in ("b", "c", "d")
            ]
            await asyncio.sleep(0)
            later[0].cancel()
        written = [await first, await later[1], await later[2]]
        with pytest.raises(asyncio.CancelledError):
            await later[0]
        titles = await stored(app, "SELECT title FROM tasks ORDER BY id")

    assert [row.title for row in written] == ["first", "c", "d"]
    assert titles == [("first",), ("c",), ("d",)], "the cancelled create wrote nothing"


async def test_a_refused_batch_is_written_again_one_by_one(tmp_path: Path) -> None:
    async with app_on_postgres(tmp_path) as app:
        gathered = group_creates(app)
        now = datetime.now(UTC)
        async with owner_locked(app):
            first = asyncio.create_task(gathered.create(1, "first", False, now))
            await asyncio.sleep(0.2)
            owners = {"kept": 1, "orphan": 999_999, "also kept": 1}  # no user 999999
            later = {
                t: asyncio.create_task(gathered.create(o, t, False, now)) for t, o in owners.items()
            }
            await asyncio.sleep(0)
        await first
        kept = [await later["kept"], await later["also kept"]]
        with pytest.raises(asyncpg.ForeignKeyViolationError):
            await later["orphan"]
        titles = await stored(app, "SELECT title FROM tasks ORDER BY id")
        events = await stored(app, "SELECT count(*) FROM task_events")

    assert [row.title for row in kept] == ["kept", "also kept"]
    assert titles == [("first",), ("kept",), ("also kept",)]
    assert events == [(3,)]

"""Reads straight on asyncpg: the same rows as through a session, and the same faults.

These run on the local PostgreSQL whatever backend the suite runs on: the
driver path exists only there.
"""

from __future__ import annotations

import asyncio
from datetime import UTC
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from sqlalchemy import text
from sqlalchemy.pool import QueuePool

from quart_tasks.storage.driver import DatabaseUnavailable
from quart_tasks.tasks.store import statements
from quart_tasks.tasks.store.statements import ListShape
from tests.helpers.apps import ADMIN, app_database, app_on_postgres, bearer, reader_of
from tests.helpers.servers import LOCAL_POSTGRES


async def test_the_driver_returns_what_the_session_returns(tmp_path: Path) -> None:
    async with app_on_postgres(tmp_path) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        for n in range(5):
            body = {"title": f"t{n} é _%", "done": n % 2 == 0}
            assert (await client.post("/api/tasks", json=body, headers=auth)).status_code == 201
        shape = ListShape(sort="created_desc", owner="caller", done=True, title=True)
        cases: list[tuple[Any, dict[str, Any]]] = [
            (statements.fetch(any_owner=False), {"task_id": 2, "owner_id": 1}),
            (statements.fetch(any_owner=True), {"task_id": 3}),
            (
                statements.count(shape),
                {"owner_id": 1, "done": True, "title_pattern": "%é%", "count_window": 10},
            ),
            (
                statements.count(ListShape("id_desc", "caller", done=None, title=False)),
                {"owner_id": 1},
            ),
            (
                statements.page(shape),
                {
                    "owner_id": 1,
                    "done": True,
                    "title_pattern": "%t%",
                    "count_window": 10,
                    "limit": 2,
                    "offset": 1,
                    "window": 3,
                },
            ),
        ]
        database = app_database(app)
        for statement, values in cases:
            async with database.sessionmaker() as session:  # type: ignore[misc]
                expected = [tuple(row) for row in (await session.execute(statement, values))]
            found = await reader_of(app).rows(statement, values)
            assert [tuple(row) for row in found] == expected
            assert expected, "each case matches something"

        task = (await reader_of(app).rows(*cases[0]))[0]
        assert (task.id, task.title, task.done) == (2, "t1 é _%", False)
        assert task.created_at.tzinfo is not None
        assert task.created_at.utcoffset() == UTC.utcoffset(None)
        with pytest.raises(AttributeError):
            _ = task.no_such_column


async def test_a_search_is_planned_at_each_run_and_a_plain_list_is_kept(
    tmp_path: Path,
) -> None:
    """A search's best plan depends on its fragment, so it goes as an unnamed statement
    that PostgreSQL plans for its values every time (`PLANNED_EACH_RUN`); other reads
    stay prepared on the connection, their plan kept."""
    async with app_on_postgres(tmp_path, DB_POOL_SIZE=1) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        await client.post("/api/tasks", json={"title": "a bravo task"}, headers=auth)
        for query in ("?q=bravo", "?q=bravo&done=true", "?q=zzz&cursor=", "?done=true"):
            for _ in range(6):  # past the five runs after which a kept plan may go generic
                response = await client.get(f"/api/tasks{query}", headers=auth)
                assert response.status_code == 200

        kept = await reader_of(app).rows(text("SELECT statement FROM pg_prepared_statements"), {})

    kept_lists = [row.statement for row in kept if "FROM tasks" in row.statement]
    assert kept_lists, "the plain list's statement is kept prepared"
    assert not [statement for statement in kept_lists if "ILIKE" in statement]


async def test_a_read_needing_the_session_keeps_to_its_connection(tmp_path: Path) -> None:
    """A token that misses the session cache is checked through the session; the task
    read that follows must then use that session's connection, not wait for a second
    one: with a pool of one it would wait for itself until the pool timeout."""
    async with app_on_postgres(
        tmp_path, AUTH_CACHE_SECONDS=0, DB_POOL_SIZE=1, DB_POOL_TIMEOUT=2
    ) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        created = await client.post("/api/tasks", json={"title": "mine"}, headers=auth)
        task_id = (await created.get_json())["id"]
        answers = await asyncio.gather(
            *(client.get(f"/api/tasks/{task_id}", headers=auth) for _ in range(4))
        )
        listed = await client.get("/api/tasks", headers=auth)
    assert [answer.status_code for answer in answers] == [200] * 4
    assert listed.status_code == 200


async def test_lost_connections_answer_503_once_then_the_pool_starts_afresh(
    tmp_path: Path,
) -> None:
    async with app_on_postgres(tmp_path, AUTH_CACHE_SECONDS=60) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        created = await client.post("/api/tasks", json={"title": "kept"}, headers=auth)
        task_url = f"/api/tasks/{(await created.get_json())['id']}"
        # Several pooled connections, all of which the server then drops. Lists, since
        # reads by id of one moment share a statement and a connection (`reads_by_id`).
        warm = await asyncio.gather(*(client.get("/api/tasks", headers=auth) for _ in range(6)))
        assert {answer.status_code for answer in warm} == {200}
        name = app_database(app).engine.url.database  # type: ignore[union-attr]
        admin = await asyncpg.connect(**LOCAL_POSTGRES, database="postgres")
        try:
            ended = await admin.fetchval(
                "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
                "WHERE datname = $1 AND pid <> pg_backend_pid()",
                name,
            )
        finally:
            await admin.close()
        assert ended >= 2

        first = await client.get(task_url, headers=auth)
        then = [await client.get(task_url, headers=auth) for _ in range(6)]

    assert first.status_code == 503
    assert (await first.get_json())["error"]["code"] == "service_unavailable"
    assert [answer.status_code for answer in then] == [200] * 6


async def test_a_read_cancelled_mid_statement_is_stopped_and_keeps_its_connection(
    tmp_path: Path,
) -> None:
    """A client that leaves mid-request must not cost the pool a connection, nor leave
    its statement running.

    Only this test's database is looked at: CI runs this file on both backends' suites
    at once, against one PostgreSQL, so the other suite's sleep may be running."""
    async with app_on_postgres(tmp_path, DB_POOL_SIZE=1) as app:
        reader = reader_of(app)
        pool = app_database(app).engine.pool  # type: ignore[union-attr]
        before = await reader.first(text("SELECT pg_backend_pid() AS pid"), {})
        slow = asyncio.create_task(reader.rows(text("SELECT pg_sleep(30)"), {}))
        await asyncio.sleep(0.3)
        slow.cancel()
        with pytest.raises(asyncio.CancelledError):
            await slow
        assert isinstance(pool, QueuePool)
        assert pool.checkedout() == 0
        after = await asyncio.wait_for(reader.first(text("SELECT pg_backend_pid() AS pid"), {}), 5)
        sleeping = await reader.first(
            text(
                "SELECT count(*) AS n FROM pg_stat_activity "
                "WHERE datname = current_database() "
                "AND query LIKE 'SELECT pg_sleep(30)%' AND state = 'active'"
            ),
            {},
        )
    assert before is not None
    assert after is not None
    assert sleeping is not None
    assert after.pid == before.pid, "the same connection, not a new one"
    assert sleeping.n == 0


async def test_a_statement_error_is_not_taken_for_an_outage(tmp_path: Path) -> None:
    async with app_on_postgres(tmp_path) as app:
        reader = reader_of(app)
        with pytest.raises(asyncpg.PostgresError) as raised:
            await reader.rows(text("SELECT 1 / 0"), {})
        assert not isinstance(raised.value, DatabaseUnavailable)
        rows = await reader.rows(text("SELECT 2"), {})
    assert [tuple(row) for row in rows] == [(2,)]


async def test_a_patch_without_if_match_writes_its_change_and_event_together(
    tmp_path: Path,
) -> None:
    async with app_on_postgres(tmp_path) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        creation = await client.post("/api/tasks", json={"title": "a"}, headers=auth)
        created = await creation.get_json()
        url = f"/api/tasks/{created['id']}"
        changed = await client.patch(url, json={"done": True}, headers=auth)
        unchanged = await client.patch(url, json={"done": True}, headers=auth)
        missing = await client.patch("/api/tasks/999999", json={"done": True}, headers=auth)
        session = app_database(app).sessionmaker()  # type: ignore[misc]
        async with session:
            events = (
                await session.execute(
                    text("SELECT type, payload FROM task_events WHERE task_id = :id ORDER BY id"),
                    {"id": created["id"]},
                )
            ).all()

    assert changed.status_code == 200
    assert (await changed.get_json())["done"] is True
    assert unchanged.headers["ETag"] == changed.headers["ETag"], "no change, no new version"
    assert missing.status_code == 404
    assert [event.type for event in events] == ["task.created", "task.updated"]
    assert '"done":true' in events[1].payload

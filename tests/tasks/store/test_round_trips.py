"""Tests of `tasks/store/fast.py`.

What each request costs PostgreSQL in round trips.

A read runs its statements without a transaction; a create, and a change
without `If-Match`, are one statement each (the task and its event) in
autocommit; other writes keep their transaction.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select, update

from quart_tasks.models import Task
from quart_tasks.storage.sessions import db_session
from quart_tasks.tasks.log.models import TaskEvent
from tests.helpers.apps import ADMIN, app_database, bearer, serving, settings_for_test
from tests.helpers.servers import postgres_database
from tests.helpers.statements import asyncpg_type_lookup, first_word, statements_run

# Housekeeping runs after one write in a hundred, at random; here it would add statements.
NO_PURGES = {"EVENTS_PURGE_EVERY": 0, "IDEMPOTENCY_PURGE_EVERY": 0, "SESSION_PURGE_EVERY": 0}


@contextmanager
def statements_sent(app: Quart) -> Iterator[list[str]]:
    """The first word of each statement sent to PostgreSQL, BEGIN and ROLLBACK included."""
    with statements_run(app) as sent:
        words: list[str] = []
        yield words
    words.extend(first_word(statement) for statement, _ in sent)


@contextlib.asynccontextmanager
async def admin_on_postgres(tmp_path: Path) -> AsyncIterator[tuple[Quart, Any, dict[str, str]]]:
    """An app on a throwaway PostgreSQL database, its client, and an admin's token, used once."""
    async with (
        postgres_database() as url,
        serving(
            settings_for_test(
                tmp_path, DATABASE_URL=url, AUTH_CACHE_SECONDS=60, DB_FAST_PATH=True, **NO_PURGES
            )
        ) as app,
    ):
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        assert (await client.get("/api/tasks", headers=auth)).status_code == 200  # now cached
        yield app, client, auth


async def test_a_read_and_a_change_are_one_statement_and_a_guarded_change_a_transaction(
    tmp_path: Path,
) -> None:
    async with admin_on_postgres(tmp_path) as (app, client, auth):
        created = await client.post("/api/tasks", json={"title": "read me"}, headers=auth)
        task_url = f"/api/tasks/{(await created.get_json())['id']}"

        with statements_sent(app) as read:
            assert (await client.get(task_url, headers=auth)).status_code == 200
        with statements_sent(app) as changed:
            patched = await client.patch(task_url, json={"done": True}, headers=auth)
            assert patched.status_code == 200
        with statements_sent(app) as guarded:
            headers = {**auth, "If-Match": patched.headers["ETag"]}
            again = await client.patch(task_url, json={"done": False}, headers=headers)
            assert again.status_code == 200

    assert read == ["SELECT"]
    assert changed == ["WITH"], "the change and its event, in autocommit"
    assert guarded.count("BEGIN") == 1
    assert "UPDATE" in guarded
    assert guarded[-1] == "COMMIT"


async def test_a_list_page_and_its_total_are_one_statement(tmp_path: Path) -> None:
    async with admin_on_postgres(tmp_path) as (app, client, auth):
        for title in ("one", "two", "three"):
            await client.post("/api/tasks", json={"title": title}, headers=auth)
        with statements_sent(app) as listed:
            page = await client.get("/api/tasks?page=2&page_size=2", headers=auth)
        with statements_sent(app) as past_the_end:
            empty = await client.get("/api/tasks?page=5&page_size=2", headers=auth)

    assert listed == ["SELECT"]
    assert (await page.get_json())["total"] == 3
    assert past_the_end == ["SELECT", "SELECT"]  # no row to carry the total: it is counted
    assert (await empty.get_json())["total"] == 3


async def test_a_write_through_a_reading_requests_session_is_refused(tmp_path: Path) -> None:
    async with (
        postgres_database() as url,
        serving(settings_for_test(tmp_path, DATABASE_URL=url, DB_FAST_PATH=True)) as app,
        app.test_request_context("/api/tasks", method="GET"),
    ):
        session = db_session()
        with pytest.raises(RuntimeError, match="read-only request"):
            await session.execute(update(Task).values(done=True))
        session.add(Task(owner_id=1, title="sneaked in", done=False))
        with pytest.raises(RuntimeError, match="read-only request"):
            await session.flush()
        await session.close()


async def test_a_create_is_one_statement_and_its_event_carries_the_created_task(
    tmp_path: Path,
) -> None:
    async with admin_on_postgres(tmp_path) as (app, client, auth):
        with statements_sent(app) as sent:
            created = await client.post(
                "/api/tasks", json={"title": 'say "hi" \\ é', "done": True}, headers=auth
            )
        body = await created.get_json()
        async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
            payload = await session.scalar(
                select(TaskEvent.payload).where(TaskEvent.task_id == body["id"])
            )

    assert created.status_code == 201
    assert sent == ["WITH"]
    assert payload is not None
    assert payload.encode() == await created.get_data(), "rendered by PostgreSQL as TaskOut does"


TRICKY_TITLES = ['say "hi" \\ é ✓', "tab\there\nnewline", "\x01\x1f control", "</script>&"]


async def test_a_changes_event_carries_the_task_byte_for_byte_as_answered(tmp_path: Path) -> None:
    """The event's JSON is rendered by PostgreSQL; it must be what `TaskOut` renders."""
    async with admin_on_postgres(tmp_path) as (app, client, auth):
        created = await client.post("/api/tasks", json={"title": "plain"}, headers=auth)
        task_id = (await created.get_json())["id"]
        answers = []
        for title in TRICKY_TITLES:
            response = await client.patch(
                f"/api/tasks/{task_id}", json={"title": title, "done": True}, headers=auth
            )
            assert response.status_code == 200
            answers.append(await response.get_data())
        unchanged = await client.patch(f"/api/tasks/{task_id}", json={"done": True}, headers=auth)
        async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
            payloads = (
                await session.scalars(
                    select(TaskEvent.payload)
                    .where(TaskEvent.task_id == task_id, TaskEvent.type == "task.updated")
                    .order_by(TaskEvent.id)
                )
            ).all()

    assert unchanged.status_code == 200
    assert [payload.encode() for payload in payloads] == answers, "one event per change"


async def test_a_read_on_the_driver_makes_no_session(tmp_path: Path) -> None:
    async with admin_on_postgres(tmp_path) as (app, client, auth):
        database = app_database(app)
        made: list[object] = []
        sessionmaker = database.read_sessionmaker

        def counting() -> Any:
            made.append(None)
            return sessionmaker()  # type: ignore[misc]

        database.read_sessionmaker = counting  # type: ignore[assignment]
        try:
            read = await client.get("/api/tasks?page=1", headers=auth)
        finally:
            database.read_sessionmaker = sessionmaker

    assert read.status_code == 200
    assert made == [], "the page and its total went straight to the driver"


async def test_creates_make_asyncpg_look_up_no_type(tmp_path: Path) -> None:
    """Before its first use of an array type other than text[] on a connection, asyncpg
    queries the catalog for it, some 10 ms: the create statement sends only text[]."""
    async with admin_on_postgres(tmp_path) as (app, client, auth):
        with statements_run(app, type_lookups=True) as sent:
            created = await asyncio.gather(
                *(
                    client.post("/api/tasks", json={"title": f"t{n}", "done": True}, headers=auth)
                    for n in range(12)
                )
            )
        listed = await (await client.get("/api/tasks?done=true", headers=auth)).get_json()
    assert [response.status_code for response in created] == [201] * 12
    assert listed["total"] == 12
    assert any(first_word(statement) == "WITH" for statement, _ in sent), "the create ran"
    assert not [statement for statement, _ in sent if asyncpg_type_lookup(statement)]

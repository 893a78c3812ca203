"""Tests of `tasks/store/counts.py`.

A list's total comes from counts the database keeps; they follow every write to `tasks`.

The triggers that keep them run for any writer, so rows written by SQL
straight into the table (an operator's fix, a bulk load) are counted too.
"""

from __future__ import annotations

import asyncio
from typing import Any

from quart import Quart
from sqlalchemy import text

from tests.helpers.apps import MakeUser, app_database, bearer
from tests.helpers.support import Client


async def execute(app: Quart, statement: str, **values: Any) -> None:
    async with app_database(app).engine.begin() as connection:  # type: ignore[union-attr]
        await connection.execute(text(statement), values)


async def scalar(app: Quart, statement: str, **values: Any) -> Any:
    async with app_database(app).engine.connect() as connection:  # type: ignore[union-attr]
        return (await connection.execute(text(statement), values)).scalar()


async def total(client: Client, auth: dict[str, str], query: str = "") -> int:
    response = await client.get(f"/api/tasks?page_size=1{query}", headers=auth)
    assert response.status_code == 200, await response.get_data()
    found: int = (await response.get_json())["total"]
    return found


async def user_id(app: Quart, username: str) -> int:
    found: int = await scalar(app, "SELECT id FROM users WHERE username = :name", name=username)
    return found


async def create_tasks(client: Client, auth: dict[str, str], how_many: int) -> list[int]:
    """`how_many` tasks through the API, titled t0, t1...; their ids."""
    ids = []
    for n in range(how_many):
        response = await client.post("/api/tasks", json={"title": f"t{n}"}, headers=auth)
        ids.append((await response.get_json())["id"])
    return ids


async def load_tasks(app: Quart, owner: int, how_many: int) -> None:
    """`how_many` tasks for `owner` in one INSERT ... SELECT, past the API."""
    await execute(
        app,
        "WITH RECURSIVE n (i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :how_many) "
        "INSERT INTO tasks (owner_id, title, done, version, created_at, updated_at) "
        "SELECT :owner, 'loaded', false, 1, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP FROM n",
        owner=owner,
        how_many=how_many,
    )


async def test_the_total_follows_creates_and_deletes_through_the_api(
    client: Client, auth: dict[str, str]
) -> None:
    ids = await create_tasks(client, auth, 5)
    assert await total(client, auth) == 5

    for task_id in ids[:2]:
        assert (await client.delete(f"/api/tasks/{task_id}", headers=auth)).status_code == 204

    assert await total(client, auth) == 3


async def test_rows_written_past_the_api_are_counted(
    app: Quart, client: Client, auth: dict[str, str]
) -> None:
    alice = await user_id(app, "alice")
    await load_tasks(app, alice, 30)
    assert await total(client, auth) == 30

    await execute(app, "DELETE FROM tasks WHERE id IN (SELECT id FROM tasks LIMIT 12)")

    assert await total(client, auth) == 18


async def test_a_task_given_to_another_owner_moves_between_their_totals(
    app: Quart, client: Client, auth: dict[str, str], make_user: MakeUser
) -> None:
    bob = bearer(await make_user("bob"))
    await create_tasks(client, auth, 3)

    await execute(
        app,
        "UPDATE tasks SET owner_id = :bob WHERE id = (SELECT min(id) FROM tasks)",
        bob=await user_id(app, "bob"),
    )

    assert (await total(client, auth), await total(client, bob)) == (2, 1)


async def test_deleting_a_user_takes_their_tasks_and_their_count(
    app: Quart, client: Client, auth: dict[str, str], make_user: MakeUser
) -> None:
    bob = bearer(await make_user("bob"))
    for headers in (auth, bob, bob):
        await client.post("/api/tasks", json={"title": "t"}, headers=headers)
    bob_id = await user_id(app, "bob")

    await execute(app, "DELETE FROM users WHERE id = :bob", bob=bob_id)

    assert (
        await scalar(app, "SELECT count(*) FROM task_counts WHERE owner_id = :bob", bob=bob_id) == 0
    )
    assert await total(client, auth) == 1


async def test_a_total_reads_the_kept_count_of_its_done_state_and_a_search_counts(
    app: Quart, client: Client, auth: dict[str, str]
) -> None:
    """The kept counts are what the list shows, with or without a `done` filter (so a
    list never scans the owner's tasks); a `q` search counts the rows it matches."""
    for done in (True, False, False):
        await client.post("/api/tasks", json={"title": "t", "done": done}, headers=auth)
    # Tamper with the open tasks' count (one of its rows: the creates may have used
    # several) to see which number each list reports.
    await execute(
        app,
        "UPDATE task_counts SET total = total + 100 WHERE owner_id = :alice AND NOT done "
        "AND slot = (SELECT min(slot) FROM task_counts WHERE owner_id = :alice AND NOT done)",
        alice=await user_id(app, "alice"),
    )

    assert await total(client, auth) == 103
    assert await total(client, auth, "&done=false") == 102
    assert await total(client, auth, "&done=true") == 1
    assert await total(client, auth, "&q=t") == 3


async def test_completing_and_reopening_a_task_moves_it_between_the_done_totals(
    client: Client, auth: dict[str, str]
) -> None:
    ids = await create_tasks(client, auth, 3)

    await client.patch(f"/api/tasks/{ids[0]}", json={"done": True}, headers=auth)
    await client.put(f"/api/tasks/{ids[1]}", json={"title": "t1", "done": True}, headers=auth)
    await client.patch(f"/api/tasks/{ids[1]}", json={"title": "renamed"}, headers=auth)
    assert (await total(client, auth, "&done=true"), await total(client, auth, "&done=0")) == (2, 1)

    await client.patch(f"/api/tasks/{ids[0]}", json={"done": False}, headers=auth)
    await client.delete(f"/api/tasks/{ids[1]}", headers=auth)

    assert (await total(client, auth, "&done=yes"), await total(client, auth, "&done=no")) == (0, 2)
    assert await total(client, auth) == 2


async def test_concurrent_writers_are_each_counted(
    app: Quart, client: Client, auth: dict[str, str]
) -> None:
    """On PostgreSQL concurrent writers land in different count rows; their sum is exact."""

    async def create(n: int) -> int:
        response = await client.post("/api/tasks", json={"title": f"t{n}"}, headers=auth)
        assert response.status_code == 201
        task_id: int = (await response.get_json())["id"]
        return task_id

    ids = await asyncio.gather(*(create(n) for n in range(40)))
    await asyncio.gather(*(client.delete(f"/api/tasks/{i}", headers=auth) for i in ids[:15]))

    assert await total(client, auth) == 25
    assert await scalar(app, "SELECT count(*) FROM tasks") == 25

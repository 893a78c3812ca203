"""Every list order, first page or deep keyset page, with or without filters, is served
by its index, one `done` state at a time: checked on the statements the API really runs.

No plan reads the whole table or sorts its rows; the only sort is the merge of the
two `done` states' branches, each bounded by its own limit.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import insert, select, text

from quart_tasks.models import Task, User
from quart_tasks.storage.base import utcnow
from tests.helpers.apps import app_database
from tests.helpers.statements import statements_run
from tests.helpers.support import Client

SORT_INDEXES = {
    "id_desc": "ix_tasks_owner_id_done_id",
    "id_asc": "ix_tasks_owner_id_done_id",
    "created_desc": "ix_tasks_owner_id_done_created_at_id",
    "created_asc": "ix_tasks_owner_id_done_created_at_id",
    "updated_desc": "ix_tasks_owner_id_done_updated_at_id",
    "title_asc": "ix_tasks_owner_id_done_title_id",
}
OTHER_OWNERS = 20
TASKS = 8000


@pytest.fixture
async def seeded(app: Quart, alice_tokens: dict[str, Any]) -> None:
    """Thousands of tasks: a quarter alice's, the rest spread over many owners."""
    database = app_database(app)
    start = utcnow()
    async with database.sessionmaker() as session:  # type: ignore[misc]
        alice = await session.scalar(select(User.id).where(User.username == "alice"))
        others = list(
            await session.scalars(
                insert(User).returning(User.id),
                [
                    {
                        "username": f"u{n}",
                        "username_key": f"u{n}",
                        "password_hash": "-",
                        "role": "user",
                    }
                    for n in range(OTHER_OWNERS)
                ],
            )
        )
        rows = [
            {
                "owner_id": alice if n % 4 == 0 else others[n % OTHER_OWNERS],
                "title": f"task {n * 7919 % 10007:05d}",
                "done": n % 3 == 0,
                "version": 1,
                "created_at": start + timedelta(microseconds=n),
                "updated_at": start + timedelta(microseconds=n),
            }
            for n in range(TASKS)
        ]
        await session.execute(insert(Task), rows)
        await session.commit()
    async with database.engine.begin() as connection:  # type: ignore[union-attr]
        await connection.execute(text("ANALYZE"))


@contextmanager
def captured_list_queries(app: Quart) -> Iterator[list[tuple[str, Any]]]:
    """The task-list SELECTs the app runs meanwhile, with their parameters."""
    with statements_run(app) as sent:
        lists: list[tuple[str, Any]] = []
        yield lists
    lists.extend(
        (statement, parameters)
        for statement, parameters in sent
        if statement.lstrip().upper().startswith("SELECT") and "ORDER BY" in statement
    )


async def plan(app: Quart, statement: str, parameters: Any) -> Any:
    async with app_database(app).engine.connect() as connection:  # type: ignore[union-attr]
        if connection.dialect.name == "postgresql":
            rows = await connection.exec_driver_sql(
                f"EXPLAIN (FORMAT JSON) {statement}", parameters
            )
            found = rows.scalar_one()
            return json.loads(found) if isinstance(found, str) else found
        rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return [str(row[-1]) for row in rows]


def nodes(node: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield node
    for child in node.get("Plans", []):
        yield from nodes(child)


def reads_tasks_by(query_plan: Any, index: str) -> bool:
    """Whether every read of `tasks` goes through an index (`index`, or the primary key
    to fetch a page's rows by id), with no sort of rows straight from the table."""
    if isinstance(query_plan, list) and query_plan and isinstance(query_plan[0], str):
        lines = query_plan  # SQLite
        return all(not line.startswith("SCAN tasks") for line in lines) and any(
            index in line for line in lines
        )
    root = query_plan[0]["Plan"]
    used = set()
    for node in nodes(root):
        if node.get("Relation Name") == "tasks":
            if node["Node Type"] == "Seq Scan":
                return False
            used.add(node.get("Index Name"))
        if node["Node Type"] == "Sort" and node["Plans"][0].get("Relation Name") == "tasks":
            return False
    return index in used and used <= {index, "pk_tasks"}


@pytest.mark.parametrize("sort", list(SORT_INDEXES))
@pytest.mark.parametrize("filters", ["", "&done=true"])
async def test_each_list_query_uses_its_index(
    app: Quart, client: Client, auth: dict[str, str], seeded: None, sort: str, filters: str
) -> None:
    with captured_list_queries(app) as statements:
        first = await client.get(
            f"/api/tasks?cursor=&page_size=20&sort={sort}{filters}", headers=auth
        )
        cursor = (await first.get_json())["next_cursor"]
        for _ in range(10):  # a deep page, mid-way through alice's 2,000
            page = await client.get(
                "/api/tasks",
                query_string={"cursor": cursor, "page_size": 100, "sort": sort},
                headers=auth,
            )
            cursor = (await page.get_json())["next_cursor"]
        await client.get(f"/api/tasks?page=3&sort={sort}{filters}", headers=auth)

    assert len(statements) == 12
    for statement, parameters in (statements[0], statements[-2], statements[-1]):
        query_plan = await plan(app, statement, parameters)
        assert reads_tasks_by(query_plan, SORT_INDEXES[sort]), f"{statement}\n{query_plan}"

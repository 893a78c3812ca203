"""Every list order, first page or deep keyset page, with or without filters, is served
by an index and needs no sort step: checked on the statements the API really runs."""

from __future__ import annotations

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

# The id orders may also walk the primary key and filter: the planner picks
# that when the caller owns a large share of all tasks.
SORT_INDEXES = {
    "id_desc": ("ix_tasks_owner_id_id", "pk_tasks"),
    "id_asc": ("ix_tasks_owner_id_id", "pk_tasks"),
    "created_desc": ("ix_tasks_owner_id_created_at_id",),
    "created_asc": ("ix_tasks_owner_id_created_at_id",),
    "updated_desc": ("ix_tasks_owner_id_updated_at_id",),
    "title_asc": ("ix_tasks_owner_id_title_id",),
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


async def plan(app: Quart, statement: str, parameters: Any) -> str:
    async with app_database(app).engine.connect() as connection:  # type: ignore[union-attr]
        if connection.dialect.name == "postgresql":
            rows = await connection.exec_driver_sql(f"EXPLAIN {statement}", parameters)
        else:
            rows = await connection.exec_driver_sql(f"EXPLAIN QUERY PLAN {statement}", parameters)
        return "\n".join(" ".join(str(column) for column in row) for row in rows)


def uses_index_without_sorting(query_plan: str, indexes: tuple[str, ...]) -> bool:
    if "Seq Scan" in query_plan or "Sort" in query_plan or "TEMP B-TREE" in query_plan:
        return False
    return any(index in query_plan for index in indexes)


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
        assert uses_index_without_sorting(query_plan, SORT_INDEXES[sort]), (
            f"{statement}\n{query_plan}"
        )

"""Page 1 against a page near the end, offset mode against keyset mode, on PostgreSQL.

Seeds one user's tasks (200,000 by default) in a throwaway database, then times
`GET /api/tasks` through the app (in process, no network) for each mode, sort
order and depth, and prints medians. Usage:

    .venv/bin/python bench/keyset_pages.py [--tasks 200000] [--repeat 25]
        [--admin-url postgresql+asyncpg://postgres@127.0.0.1/postgres]
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
import uuid
from datetime import timedelta
from pathlib import Path

import asyncpg
from alembic import command
from alembic.config import Config as AlembicConfig
from sqlalchemy import insert, make_url, select, text
from sqlalchemy.ext.asyncio import create_async_engine

from quart_tasks import create_app
from quart_tasks.config import TestingConfig
from quart_tasks.models import Task, User
from quart_tasks.storage.base import utcnow
from quart_tasks.tasks.sorting import SORT_ORDERS

CHECKOUT = Path(__file__).resolve().parent.parent
PAGE_SIZE = 20
SORTS = ["id_desc", "created_desc", "title_asc"]


BATCH = 5_000  # rows per INSERT: 5 values each, under asyncpg's 32,767 arguments


async def seed(url: str, tasks: int) -> None:
    engine = create_async_engine(url)
    start = utcnow() - timedelta(days=30)
    async with engine.begin() as connection:
        owner = await connection.scalar(select(User.id).where(User.username == "admin"))
        for offset in range(0, tasks, BATCH):
            rows = [
                {
                    "owner_id": owner,
                    "title": f"task {n * 7919 % tasks:07d}",
                    "done": n % 3 == 0,
                    "created_at": start + timedelta(milliseconds=n),
                    "updated_at": start + timedelta(milliseconds=n),
                }
                for n in range(offset, min(offset + BATCH, tasks))
            ]
            # One multi-row INSERT per batch: the task-count trigger fires once per
            # statement, where an executemany would fire it once per row.
            await connection.execute(insert(Task).values(rows))
    async with engine.connect() as connection:
        await connection.execution_options(isolation_level="AUTOCOMMIT")
        await connection.execute(text("VACUUM ANALYZE tasks"))
    await engine.dispose()


async def median_ms(client: object, url: str, headers: dict[str, str], repeat: int) -> float:
    samples = []
    for _ in range(repeat):
        started = time.perf_counter()
        response = await client.get(url, headers=headers)  # type: ignore[attr-defined]
        await response.get_data()
        assert response.status_code == 200, await response.get_data()
        samples.append((time.perf_counter() - started) * 1000)
    return statistics.median(samples)


async def measure(url: str, tasks: int, repeat: int) -> None:
    # The page before the last lies far past the offset pages the API serves by
    # default (LIST_MAX_OFFSET): lifted here, to show what such a page costs.
    config = TestingConfig(DATABASE_URL=url, SECRET_KEY="bench-" + "x" * 40, LIST_MAX_OFFSET=tasks)
    app = create_app(config)
    async with app.test_app():
        client = app.test_client()
        login = await client.post("/api/login", json={"username": "admin", "password": "admin"})
        headers = {"Authorization": f"Bearer {(await login.get_json())['access_token']}"}
        deep_page = tasks // PAGE_SIZE - 1
        print(f"{tasks:,} tasks, page_size {PAGE_SIZE}, median of {repeat} requests (ms)")
        print(
            f"{'sort':<14}{'offset p1':>11}{'offset deep':>13}{'keyset p1':>11}{'keyset deep':>13}"
            f"{'deep/p1 offset':>16}{'deep/p1 keyset':>16}"
        )
        for sort in SORTS:
            cursor = await cursor_before_last_page(app, url, sort, tasks)
            base = f"/api/tasks?sort={sort}&page_size={PAGE_SIZE}"
            offset_first = await median_ms(client, f"{base}&page=1", headers, repeat)
            offset_deep = await median_ms(client, f"{base}&page={deep_page}", headers, repeat)
            keyset_first = await median_ms(client, f"{base}&cursor=", headers, repeat)
            keyset_deep = await median_ms(client, f"{base}&cursor={cursor}", headers, repeat)
            print(
                f"{sort:<14}{offset_first:>11.1f}{offset_deep:>13.1f}{keyset_first:>11.1f}"
                f"{keyset_deep:>13.1f}{offset_deep / offset_first:>16.1f}"
                f"{keyset_deep / keyset_first:>16.2f}"
            )


async def cursor_before_last_page(app: object, url: str, sort: str, tasks: int) -> str:
    """The cursor a walk holds one page before its end."""
    order = SORT_ORDERS[sort]
    engine = create_async_engine(url)
    async with engine.connect() as connection:
        row = (
            await connection.execute(
                select(Task).order_by(*order.order_by()).offset(tasks - 2 * PAGE_SIZE - 1).limit(1)
            )
        ).one()
    await engine.dispose()
    async with app.app_context():  # type: ignore[attr-defined]
        return order.cursor_after(Task(**row._mapping))


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tasks", type=int, default=200_000)
    parser.add_argument("--repeat", type=int, default=25)
    parser.add_argument("--admin-url", default="postgresql+asyncpg://postgres@127.0.0.1/postgres")
    args = parser.parse_args()

    admin = make_url(args.admin_url)
    name = f"bench_keyset_{uuid.uuid4().hex[:8]}"
    connect = {
        "host": admin.host,
        "port": admin.port,
        "user": admin.username,
        "password": admin.password,
        "database": admin.database,
    }
    connection = await asyncpg.connect(**connect)
    await connection.execute(f'CREATE DATABASE "{name}"')
    url = admin.set(database=name).render_as_string(hide_password=False)
    try:
        alembic = AlembicConfig(str(CHECKOUT / "alembic.ini"))
        alembic.set_main_option("sqlalchemy.url", url)
        alembic.attributes["configure_logger"] = False
        await asyncio.to_thread(command.upgrade, alembic, "head")
        started = time.perf_counter()
        app = create_app(TestingConfig(DATABASE_URL=url, SECRET_KEY="bench-" + "x" * 40))
        async with app.test_app():  # creates the admin account
            pass
        await seed(url, args.tasks)
        print(f"seeded in {time.perf_counter() - started:.1f} s")
        await measure(url, args.tasks, args.repeat)
    finally:
        await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await connection.close()


if __name__ == "__main__":
    asyncio.run(main())

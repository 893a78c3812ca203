"""The connection pool serves waiters in arrival order and never loses a connection."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.util import greenlet_spawn
from sqlalchemy.util.queue import Empty

from quart_tasks import config as settings
from quart_tasks.storage.engine import create_engine
from quart_tasks.storage.pool import FairAsyncQueuePool, FairQueue, first_in_line


async def take(queue: FairQueue[str], seconds: float | None = None) -> str:
    """`queue.get` as the pool calls it: from inside SQLAlchemy's greenlet."""
    return await greenlet_spawn(queue.get, True, seconds)


async def until_waiting(queue: FairQueue[str], count: int) -> None:
    for _ in range(10_000):
        if len(queue._waiters) >= count:
            return
        await asyncio.sleep(0)
    raise AssertionError(f"{count} waiters never queued")


async def test_a_returned_connection_goes_to_the_longest_waiter_not_to_a_newcomer() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    queue.put_nowait("connection")
    held = await take(queue)
    served: list[str] = []

    async def wait(name: str) -> None:
        item = await take(queue)
        served.append(name)
        queue.put_nowait(item)

    waiters = [asyncio.create_task(wait(f"waiter {n}")) for n in range(3)]
    await until_waiting(queue, 3)
    queue.put_nowait(held)  # handed back; before the first waiter runs, a newcomer asks
    newcomer = asyncio.create_task(wait("newcomer"))
    await asyncio.gather(*waiters, newcomer)

    assert served == ["waiter 0", "waiter 1", "waiter 2", "newcomer"]


async def test_a_wait_that_times_out_raises_empty_and_leaves_the_queue_clean() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)

    with pytest.raises(Empty):
        await take(queue, seconds=0.01)

    queue.put_nowait("connection")
    assert queue.qsize() == 1
    assert await take(queue) == "connection"


async def test_a_connection_handed_to_a_cancelled_waiter_goes_to_the_next() -> None:
    queue: FairQueue[str] = FairQueue(maxsize=1)
    first = asyncio.create_task(take(queue))
    second = asyncio.create_task(take(queue))
    await until_waiting(queue, 2)

    queue.put_nowait("connection")  # handed to the first waiter...
    first.cancel()  # ...which is cancelled before it runs again

    assert await second == "connection"
    with pytest.raises(asyncio.CancelledError):
        await first


async def test_a_checkout_first_in_line_is_served_before_those_already_waiting(
    tmp_path: Path,
) -> None:
    """Through SQLAlchemy's session, as a login session's check takes its connection."""
    engine = create_engine(
        settings.TestingConfig(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}").as_mapping()
    )
    served: list[str] = []

    async def query(name: str, *, first: bool = False) -> None:
        async with AsyncSession(engine) as session:
            if first:
                with first_in_line():
                    await session.execute(text("SELECT 1"))
            else:
                await session.execute(text("SELECT 1"))
            served.append(name)

    try:
        queue = engine.pool._pool  # type: ignore[attr-defined]
        async with engine.connect() as holder:
            await holder.execute(text("SELECT 1"))  # the pool's one connection, held
            queued = [asyncio.create_task(query(f"queued {n}")) for n in range(3)]
            await until_waiting(queue, 3)
            check = asyncio.create_task(query("check", first=True))
            await until_waiting(queue, 4)
            after = asyncio.create_task(query("after"))
            await until_waiting(queue, 5)
        await asyncio.gather(*queued, check, after)
    finally:
        await engine.dispose()

    assert served == ["check", "queued 0", "queued 1", "queued 2", "after"]


async def test_every_engine_uses_the_fair_pool(tmp_path: Path) -> None:
    config = settings.TestingConfig(DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'x.db'}")
    engine = create_engine(config.as_mapping())
    try:
        assert isinstance(engine.pool, FairAsyncQueuePool)
    finally:
        await engine.dispose()


def test_a_worker_opens_no_overflow_connections_by_default() -> None:
    assert settings.Config().DB_MAX_OVERFLOW == 0

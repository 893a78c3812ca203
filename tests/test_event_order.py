"""On PostgreSQL an event's id is drawn under a lock held to commit, so ids grow in commit order."""

from __future__ import annotations

import asyncio

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from quart_tasks.live import log
from quart_tasks.live.models import TaskEvent
from quart_tasks.models import Base

from .live import postgres_database


async def record(session: AsyncSession, task_id: int) -> None:
    await log.record_deletion(session, task_id=task_id, owner_id=1)


async def test_a_second_writer_waits_for_the_first_to_commit_before_drawing_its_id() -> None:
    async with postgres_database() as url:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            sessions = async_sessionmaker(engine)
            async with sessions() as first, sessions() as second:
                await record(first, task_id=1)  # holds the lock until it commits
                waiting = asyncio.create_task(record(second, task_id=2))
                await asyncio.sleep(0.3)
                assert not waiting.done(), "the second writer drew an id while the first was open"

                await first.commit()
                await asyncio.wait_for(waiting, 5)
                await second.commit()

            async with sessions() as reader:
                rows = (
                    await reader.execute(select(TaskEvent.task_id).order_by(TaskEvent.id))
                ).all()
        finally:
            await engine.dispose()

    assert [row.task_id for row in rows] == [1, 2]

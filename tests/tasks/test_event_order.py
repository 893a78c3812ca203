"""On PostgreSQL an event's id is drawn under a lock held to commit, so ids grow in commit order."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker, create_async_engine

from quart_tasks.auth.caller import Principal
from quart_tasks.models import Base, User
from quart_tasks.tasks import events
from quart_tasks.tasks.models import TaskEvent
from tests.helpers.servers import postgres_database

OWNER = Principal(
    user_id=1,
    username="owner",
    role="user",
    created_at=datetime(2026, 1, 1, tzinfo=UTC),
    family_id="f",
    token_id="t",
)
Writer = Callable[[AsyncSession, int], Coroutine[Any, Any, int]]


async def delete_event(session: AsyncSession, n: int) -> int:
    """A deletion's event, as `delete_task` writes it; the task id it names."""
    await events.record_deletion(session, task_id=n, owner_id=OWNER.user_id)
    return n


async def create_with_event(session: AsyncSession, n: int) -> int:
    """A create with its event, in one statement on PostgreSQL; the new task's id."""
    statement, values = events.creation_with_event(
        OWNER.user_id, f"task {n}", False, datetime.now(UTC)
    )
    task_id: int = (await session.execute(statement, values)).one().id
    return task_id


@pytest.mark.parametrize("write", [delete_event, create_with_event], ids=["event", "create"])
async def test_a_second_writer_waits_for_the_first_to_commit_before_drawing_its_id(
    write: Writer,
) -> None:
    async with postgres_database() as url:
        engine = create_async_engine(url)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            sessions = async_sessionmaker(engine)
            async with sessions() as setup:
                setup.add(User(id=1, username="owner", username_key="owner", password_hash="x"))
                await setup.commit()
            async with sessions() as first, sessions() as second:
                first_task = await write(first, 1)  # holds the lock until it commits
                waiting = asyncio.create_task(write(second, 2))
                await asyncio.sleep(0.3)
                assert not waiting.done(), "the second writer drew an id while the first was open"

                await first.commit()
                second_task = await asyncio.wait_for(waiting, 5)
                await second.commit()

            async with sessions() as reader:
                rows = (
                    await reader.execute(select(TaskEvent.task_id).order_by(TaskEvent.id))
                ).all()
        finally:
            await engine.dispose()

    assert [row.task_id for row in rows] == [first_task, second_task]

"""Tests of `tasks/log/rounds.py` and `reads.py`.

On PostgreSQL writers take no lock, and still every reader sees every event once, in
commit order: positions are given in rounds, after commit (`tasks.log.rounds`).

These run on the local PostgreSQL whatever backend the suite runs on.
"""

from __future__ import annotations

import asyncio
import random
import time
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from quart_tasks.live.broker import Broker
from quart_tasks.live.log import Event
from quart_tasks.models import Base, Task, User
from quart_tasks.storage.unit_of_work import UnitOfWork
from quart_tasks.tasks.log import reads, records, rounds
from quart_tasks.tasks.log.reads import LoggedEvent
from quart_tasks.tasks.store import statements, writes
from tests.helpers.servers import postgres_database

OWNER_ID = 1


@dataclass
class Log:
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    autocommit: async_sessionmaker[AsyncSession]

    async def take_round(self) -> int:
        async with self.sessions() as session:
            return await rounds.take_round(session)

    async def read_all_after(self, position: int, owner_id: int | None = None) -> list[LoggedEvent]:
        found: list[LoggedEvent] = []
        while True:
            async with self.autocommit() as session:
                page = await reads.read_after(session, position, owner_id=owner_id, limit=7)
            found += page.events
            position = page.reached
            if page.complete:
                return found


@pytest.fixture
async def log() -> AsyncIterator[Log]:
    async with postgres_database() as url:
        engine = create_async_engine(url, pool_size=20)
        try:
            async with engine.begin() as connection:
                await connection.run_sync(Base.metadata.create_all)
            sessions = async_sessionmaker(engine, expire_on_commit=False)
            async with sessions() as setup:
                setup.add(User(id=OWNER_ID, username="o", username_key="o", password_hash="x"))
                setup.add(User(id=2, username="p", username_key="p", password_hash="x"))
                await setup.commit()
            autocommit = async_sessionmaker(
                engine.execution_options(isolation_level="AUTOCOMMIT"), expire_on_commit=False
            )
            yield Log(engine, sessions, autocommit)
        finally:
            await engine.dispose()


async def new_task(log: Log, title: str, owner_id: int = OWNER_ID) -> int:
    async with log.sessions() as session:
        task = Task(owner_id=owner_id, title=title)
        session.add(task)
        await session.commit()
        return task.id


TITLE_CHANGE = statements.task_update(("title",), any_owner=True, check_version=False)


def title_change(task_id: int, title: str) -> dict[str, object]:
    return {"new_title": title, "task_id": task_id, "caller_id": OWNER_ID, "now": datetime.now(UTC)}


async def change_in(session: AsyncSession, task_id: int, title: str) -> None:
    """A change of title and its event, on the session path (`SessionSteps.apply`)."""
    updated = (await session.execute(TITLE_CHANGE, title_change(task_id, title))).one()
    await records.record_change(UnitOfWork(session), "task.updated", updated)


async def change_alone(log: Log, task_id: int, title: str) -> None:
    """A change of title and its event as one statement in autocommit (the fast path's)."""
    async with log.autocommit() as session:
        await session.execute(*writes.update_with_event(TITLE_CHANGE, title_change(task_id, title)))


def titles(found: Sequence[LoggedEvent]) -> list[str]:
    return [Event.of(logged).payload.split('"title":')[1].split('"')[1] for logged in found]


async def test_an_event_committed_late_comes_after_those_committed_before_it(log: Log) -> None:
    """The race a lock used to prevent: the held writer drew its event's id first and
    commits last. A reader that saw the others must still get it, after them."""
    task_ids = [await new_task(log, f"task {n}") for n in range(6)]
    await log.take_round()
    _, start = await bounds(log)
    async with log.sessions() as held:
        await change_in(held, task_ids[0], "held")  # its id is drawn now, smallest of all
        for n in range(1, 6):
            await change_alone(log, task_ids[n], f"quick {n}")  # each commits at once
        assert await log.take_round() == 5
        seen_before = await log.read_all_after(start)
        await held.commit()
    assert await log.take_round() == 1
    seen_after = await log.read_all_after(seen_before[-1].position)
    replayed = await log.read_all_after(start)

    assert titles(seen_before) == [f"quick {n}" for n in range(1, 6)]
    assert titles(seen_after) == ["held"]
    assert replayed == [*seen_before, *seen_after]
    assert [e.position for e in replayed] == list(range(start + 1, start + 7))


async def test_a_change_that_waited_for_another_comes_after_it(log: Log) -> None:
    """Transaction ids would put these the wrong way round: the older transaction
    changes the task after the younger one committed its own change of it."""
    contested, other = await new_task(log, "contested"), await new_task(log, "other")
    await log.take_round()
    _, start = await bounds(log)
    async with log.sessions() as older:
        await change_in(older, other, "older first")  # the older transaction's id is drawn
        await change_alone(log, contested, "younger")  # commits
        await change_in(older, contested, "older last")
        await older.commit()
    await log.take_round()
    found = await log.read_all_after(start)
    async with log.sessions() as session:
        final = await session.scalar(select(Task.title).where(Task.id == contested))

    contested_titles = [
        t for e, t in zip(found, titles(found), strict=True) if e.task_id == contested
    ]
    assert contested_titles == ["younger", "older last"]
    assert contested_titles[-1] == final


async def test_concurrent_writers_held_open_are_seen_once_each_in_commit_order(log: Log) -> None:
    """Writers on a few tasks at once (so they conflict), some holding their commit
    open, while a broker feeds a subscriber and readers resume from where others were."""
    rng = random.Random(7)
    task_ids = [await new_task(log, f"t{n}", owner_id=1 + n % 2) for n in range(4)]
    await log.take_round()
    broker = Broker(
        log.autocommit,
        queue_size=10_000,
        poll_seconds=0.02,
        heartbeat_seconds=60,
        sequence=log.take_round,
    )
    subscription = await broker.subscribe(None)
    one_owner = await broker.subscribe(OWNER_ID)
    start = subscription.position
    spans: dict[str, tuple[float, float]] = {}  # a write's title: (began, committed)
    marks: list[int] = []  # positions the subscriber had reached, for resumes

    async def writer(n: int) -> None:
        for k in range(25):
            title = f"w{n}.{k}"
            task_id = rng.choice(task_ids)
            began = time.monotonic()
            if rng.random() < 0.5:
                await change_alone(log, task_id, title)
            else:
                async with log.sessions() as session:
                    await change_in(session, task_id, title)
                    await asyncio.sleep(rng.choice([0, 0, 0.001, 0.01, 0.05]))
                    await session.commit()
            spans[title] = (began, time.monotonic())
            if rng.random() < 0.3:
                await log.take_round()  # rounds from several "processes" at once

    async def subscriber() -> list[Event]:
        received: list[Event] = []
        while len(received) < 8 * 25:
            item = await asyncio.wait_for(subscription.queue.get(), 10)
            assert isinstance(item, Event), item
            received.append(item)
            if len(received) % 20 == 0:
                marks.append(item.position)
        return received

    receiving = asyncio.create_task(subscriber())
    try:
        await asyncio.gather(*(writer(n) for n in range(8)))
        await log.take_round()
        received = await receiving
        owner_received = []
        while not one_owner.queue.empty():  # dispatched with the last of `received`
            item = one_owner.queue.get_nowait()
            assert isinstance(item, Event), item
            owner_received.append(item)
    finally:
        await broker.close()
    logged = await log.read_all_after(start)
    async with log.sessions() as session:
        rows = await session.execute(select(Task.id, Task.title))
        final: dict[int, str] = {task_id: title for task_id, title in rows}

    positions = [e.position for e in received]
    assert positions == list(range(start + 1, start + 1 + 8 * 25)), "each once, no gap"
    assert [e.position for e in logged] == positions
    order = titles(logged)
    assert sorted(order) == sorted(spans), "every committed change, once"
    for mark in marks:
        resumed = await log.read_all_after(mark)
        assert [e.position for e in resumed] == [p for p in positions if p > mark]
    owners = {e.position: e.owner_id for e in logged}
    assert [e.position for e in owner_received] == [p for p in positions if owners[p] == OWNER_ID]
    mine = await log.read_all_after(start, owner_id=OWNER_ID)
    assert [e.position for e in mine] == [e.position for e in owner_received]
    # Commit order: a change that began after another had committed comes after it.
    place = {title: n for n, title in enumerate(order)}
    for title, (_, committed) in spans.items():
        for later, (began, _) in spans.items():
            if began > committed:
                assert place[later] > place[title], f"{later} began after {title} committed"
    # Replaying the events leaves each task as the database has it.
    replay: dict[int, str] = {}
    for event, title in zip(logged, order, strict=True):
        replay[event.task_id] = title
    assert replay == {task_id: final[task_id] for task_id in replay}


async def bounds(log: Log) -> tuple[int, int]:
    async with log.autocommit() as session:
        return await reads.bounds(session)

"""The engine each backend gets, and timestamps that stay UTC on both."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

from quart_tasks import config as settings
from quart_tasks.models import Task, User
from quart_tasks.services import services_of
from quart_tasks.storage.engine import create_engine
from quart_tasks.storage.sessions import Database, close_request_session, db_session
from quart_tasks.storage.unit_of_work import unit_of_work
from tests.helpers.apps import app_database, serving, settings_for_test
from tests.helpers.support import TEST_DATABASE_URL


async def test_a_sqlite_file_gets_wal_foreign_keys_and_a_busy_timeout(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'nested' / 'dir' / 'tasks.db'}"
    engine = create_engine(
        settings.TestingConfig(DATABASE_URL=url, SQLITE_BUSY_TIMEOUT_MS=1234).as_mapping()
    )
    try:
        async with engine.connect() as connection:
            pragmas = [
                (await connection.execute(text(f"PRAGMA {name}"))).scalar()
                for name in ("journal_mode", "foreign_keys", "busy_timeout")
            ]
    finally:
        await engine.dispose()

    assert pragmas == ["wal", 1, 1234]
    assert (tmp_path / "nested" / "dir" / "tasks.db").exists()


async def test_timestamps_come_back_aware_utc(app: Quart) -> None:
    database: Database = services_of(app).database
    paris = timezone(timedelta(hours=1))
    written = datetime(2026, 11, 24, 10, 30, 0, 123456, tzinfo=paris)
    async with database.sessionmaker() as session:  # type: ignore[misc]
        owner = await session.scalar(select(User.id))
        task = Task(owner_id=owner, title="tz", done=False, created_at=written, updated_at=written)
        session.add(task)
        await session.commit()
        task_id = task.id

    async with database.sessionmaker() as session:  # type: ignore[misc]
        read = await session.get(Task, task_id)

    assert read is not None
    assert read.created_at == written
    assert read.created_at.tzinfo == UTC
    assert read.created_at.hour == 9


async def test_a_naive_timestamp_is_refused(app: Quart) -> None:
    database: Database = services_of(app).database
    async with database.sessionmaker() as session:  # type: ignore[misc]
        session.add(
            Task(
                title="naive",
                done=False,
                created_at=datetime(2026, 1, 1),
                updated_at=datetime(2026, 1, 1),
            )
        )
        with pytest.raises(Exception, match="naive datetime"):
            await session.commit()


async def test_timestamps_are_stored_in_utc(app: Quart) -> None:
    """PostgreSQL keeps a timestamptz; SQLite, which has no such type, keeps UTC text."""
    database: Database = services_of(app).database
    paris = timezone(timedelta(hours=1))
    async with database.sessionmaker() as session:  # type: ignore[misc]
        owner = await session.scalar(select(User.id))
        written = datetime(2026, 11, 24, 10, 30, 0, 123456, tzinfo=paris)
        session.add(Task(owner_id=owner, title="t", created_at=written, updated_at=written))
        await session.commit()
        raw = (await session.execute(text("SELECT created_at FROM tasks"))).scalar()
        column_type = None
        assert session.bind is not None
        if session.bind.dialect.name == "postgresql":
            column_type = (
                await session.execute(
                    text(
                        "SELECT data_type FROM information_schema.columns "
                        "WHERE table_name = 'tasks' AND column_name = 'created_at'"
                    )
                )
            ).scalar()

    if TEST_DATABASE_URL is None:
        assert raw == "2026-11-24 09:30:00.123456"
    else:
        assert column_type == "timestamp with time zone"
        assert raw == datetime(2026, 11, 24, 9, 30, 0, 123456, tzinfo=UTC)


class RecordingSession:
    """Enough of a session for a unit of work that wrote nothing itself."""

    rolled_back = False

    def in_transaction(self) -> bool:
        return False

    async def rollback(self) -> None:
        self.rolled_back = True


async def test_failed_housekeeping_rolls_back_and_logs_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    async def purge(_session: object) -> None:
        raise ConnectionRefusedError("the database is gone")

    session = RecordingSession()
    with caplog.at_level(logging.WARNING, logger="quart_tasks.storage.unit_of_work"):
        async with unit_of_work(session) as work:  # type: ignore[arg-type]
            work.after_commit("purge something", purge)

    assert session.rolled_back
    assert [r.getMessage() for r in caplog.records] == [
        "could not purge something: ConnectionRefusedError"
    ]
    assert all(record.exc_info is None for record in caplog.records)


async def test_a_bug_in_housekeeping_is_not_swallowed() -> None:
    async def divide(_session: object) -> None:
        _ = 1 / 0

    with pytest.raises(ZeroDivisionError):
        async with unit_of_work(RecordingSession()) as work:  # type: ignore[arg-type]
            work.after_commit("divide", divide)


class HeldThread:
    """Holds a SQLite connection's own thread inside `SELECT held()` until released,
    so that whatever the test queues behind it is waiting when the test cancels it."""

    def __init__(self) -> None:
        self.entered, self.release = threading.Event(), threading.Event()
        self.driver_connection: Any = None

    def held(self) -> int:
        self.entered.set()
        self.release.wait(5)
        return 1

    async def reached(self) -> bool:
        return await asyncio.to_thread(self.entered.wait, 5)


@contextlib.asynccontextmanager
async def sqlite_notes(
    tmp_path: Path, **config: Any
) -> AsyncIterator[tuple[AsyncEngine, HeldThread]]:
    """A SQLite file engine with a `notes` table, and its one connection's `HeldThread`."""
    engine = create_engine(
        settings.TestingConfig(
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}", **config
        ).as_mapping()
    )
    thread = HeldThread()
    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE notes (body TEXT)"))
            thread.driver_connection = (await connection.get_raw_connection()).driver_connection
            await thread.driver_connection.create_function("held", 0, thread.held)
        yield engine, thread
    finally:
        thread.release.set()
        await engine.dispose()


async def test_a_cancelled_sqlite_statement_leaves_no_lock_behind(tmp_path: Path) -> None:
    """A request cancelled mid-statement (its client gone) inside a write must
    not leave the write lock held for every later write to wait on."""

    async def write_then_wait(engine: AsyncEngine) -> None:
        async with AsyncSession(engine) as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('never committed')"))
            await session.execute(text("SELECT held()"))
            await session.commit()

    async with sqlite_notes(tmp_path, SQLITE_BUSY_TIMEOUT_MS=200) as (engine, thread):
        cancelled = asyncio.create_task(write_then_wait(engine))
        assert await thread.reached()
        cancelled.cancel()
        thread.release.set()
        # Its traceback is kept, as a reference cycle keeps it until a collection.
        with pytest.raises(asyncio.CancelledError) as kept:
            await cancelled

        async with AsyncSession(engine) as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('written')"))
            await session.commit()
            bodies = (await session.execute(text("SELECT body FROM notes"))).scalars().all()

    assert bodies == ["written"]
    assert kept.value.__traceback__ is not None


@pytest.mark.parametrize("ending", ["commit", "close"])
async def test_a_cancelled_sqlite_commit_or_rollback_hands_its_connection_back(
    tmp_path: Path, ending: str
) -> None:
    """A client that hangs up while its session commits or rolls back (at teardown,
    say) must not keep the pool's one SQLite connection: every later request would
    wait for it."""
    holders: list[asyncio.Task[object]] = []

    async def write_then_end(session: AsyncSession, thread: HeldThread) -> None:
        await session.execute(text("INSERT INTO notes (body) VALUES ('a note')"))
        # The connection's thread is busy, so the commit or rollback waits behind it.
        holders.append(asyncio.create_task(thread.driver_connection.execute("SELECT held()")))
        assert await thread.reached()
        await (session.commit() if ending == "commit" else session.close())

    async with sqlite_notes(tmp_path, DB_POOL_TIMEOUT=0.5) as (engine, thread):
        ending_task = asyncio.create_task(write_then_end(AsyncSession(engine), thread))
        assert await thread.reached()
        await asyncio.sleep(0.05)  # the commit or rollback is queued behind `held()`
        ending_task.cancel()
        thread.release.set()
        with pytest.raises(asyncio.CancelledError) as kept:
            await ending_task
        await asyncio.gather(*holders)

        async with AsyncSession(engine) as later:
            await later.execute(text("INSERT INTO notes (body) VALUES ('later')"))
            await later.commit()
        checked_out = engine.pool.checkedout()  # type: ignore[attr-defined]

    assert checked_out == 0
    assert kept.value.__traceback__ is not None  # still held: no collection freed it


async def test_a_request_session_closed_as_its_client_leaves_keeps_its_connection(
    tmp_path: Path,
) -> None:
    """Teardown's close, cancelled with the request, still rolls back and hands the
    connection back to the pool as it is: not discarded for a new one to be opened."""
    url = f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}"
    async with serving(settings_for_test(tmp_path, DATABASE_URL=url)) as app:
        engine = app_database(app).engine
        assert engine is not None
        thread = HeldThread()
        async with app.test_request_context("/api/tasks", method="POST"):
            session = db_session()
            await session.execute(text("SELECT 1"))  # the request holds the connection now
            connection = (await (await session.connection()).get_raw_connection()).driver_connection
            assert connection is not None
            await connection.create_function("held", 0, thread.held)
            holder = asyncio.create_task(connection.execute("SELECT held()"))
            assert await thread.reached()
            teardown = asyncio.create_task(close_request_session(None))
            await asyncio.sleep(0.05)  # the rollback is queued behind `held()`
            teardown.cancel()
            thread.release.set()
            with pytest.raises(asyncio.CancelledError):
                await teardown
            await holder
        for _ in range(500):
            if engine.pool.checkedout() == 0:  # type: ignore[attr-defined]
                break
            await asyncio.sleep(0.01)
        async with engine.connect() as later:
            reused = (await later.get_raw_connection()).driver_connection

    assert reused is connection

"""The engine each backend gets, and timestamps that stay UTC on both."""

from __future__ import annotations

import asyncio
import logging
import threading
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from quart import Quart
from sqlalchemy import select, text
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks import config as settings
from quart_tasks.database import Database, best_effort, create_engine
from quart_tasks.models import Task, User

from .support import TEST_DATABASE_URL


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
    database: Database = app.extensions["database"]
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
    database: Database = app.extensions["database"]
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
    database: Database = app.extensions["database"]
    paris = timezone(timedelta(hours=1))
    async with database.sessionmaker() as session:  # type: ignore[misc]
        owner = await session.scalar(select(User.id))
        written = datetime(2026, 11, 24, 10, 30, 0, 123456, tzinfo=paris)
        session.add(Task(owner_id=owner, title="t", created_at=written, updated_at=written))
        await session.commit()
        raw = (await session.execute(text("SELECT created_at FROM tasks"))).scalar()
        column_type = None
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
    rolled_back = False

    async def rollback(self) -> None:
        self.rolled_back = True


async def test_failed_housekeeping_rolls_back_and_logs_one_line(
    caplog: pytest.LogCaptureFixture,
) -> None:
    session = RecordingSession()
    with caplog.at_level(logging.WARNING, logger="quart_tasks.database"):
        async with best_effort(session, "purge something"):  # type: ignore[arg-type]
            raise ConnectionRefusedError("the database is gone")

    assert session.rolled_back
    assert [r.getMessage() for r in caplog.records] == [
        "could not purge something: ConnectionRefusedError"
    ]
    assert all(record.exc_info is None for record in caplog.records)


async def test_a_bug_in_housekeeping_is_not_swallowed() -> None:
    with pytest.raises(ZeroDivisionError):
        async with best_effort(RecordingSession(), "divide"):  # type: ignore[arg-type]
            _ = 1 / 0


async def test_a_cancelled_sqlite_statement_leaves_no_lock_behind(tmp_path: Path) -> None:
    """A request cancelled mid-statement (its client gone) inside a write must
    not leave the write lock held for every later write to wait on."""
    engine = create_engine(
        settings.TestingConfig(
            DATABASE_URL=f"sqlite+aiosqlite:///{tmp_path / 'tasks.db'}", SQLITE_BUSY_TIMEOUT_MS=200
        ).as_mapping()
    )
    entered, release = threading.Event(), threading.Event()

    def held_on_the_connections_thread() -> int:
        entered.set()
        release.wait(5)
        return 1

    async def write_then_wait() -> None:
        async with AsyncSession(engine) as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('never committed')"))
            await session.execute(text("SELECT held()"))
            await session.commit()

    try:
        async with engine.begin() as connection:
            await connection.execute(text("CREATE TABLE notes (body TEXT)"))
            raw = await connection.get_raw_connection()
            await raw.driver_connection.create_function(  # type: ignore[union-attr]
                "held", 0, held_on_the_connections_thread
            )
        cancelled = asyncio.create_task(write_then_wait())
        assert await asyncio.to_thread(entered.wait, 5)
        cancelled.cancel()
        release.set()
        # Its traceback is kept, as a reference cycle keeps it until a collection.
        with pytest.raises(asyncio.CancelledError) as kept:
            await cancelled

        async with AsyncSession(engine) as session:
            await session.execute(text("INSERT INTO notes (body) VALUES ('written')"))
            await session.commit()
            bodies = (await session.execute(text("SELECT body FROM notes"))).scalars().all()
    finally:
        release.set()
        await engine.dispose()

    assert bodies == ["written"]
    assert kept.value.__traceback__ is not None

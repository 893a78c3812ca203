"""Each process positions what it commits, soon, and keeps trying while it cannot.

These run on the local PostgreSQL whatever backend the suite runs on: rounds
exist only there.
"""

from __future__ import annotations

import asyncio
import logging
from pathlib import Path

import pytest

from quart_tasks.services import services_of
from quart_tasks.tasks import event_log, events, sequencer
from tests.helpers.apps import app_database, app_on_postgres
from tests.helpers.outages import RefusingConnections


async def test_a_round_that_fails_is_retried_and_logged_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(sequencer, "RETRY_SECONDS", 0.05)
    # The app's logging keeps its records from the root logger, where caplog listens.
    logger = logging.getLogger(sequencer.__name__)
    monkeypatch.setattr(logger, "handlers", [*logger.handlers, caplog.handler])
    monkeypatch.setattr(logger, "level", logging.INFO)
    async with app_on_postgres(tmp_path) as app:
        database = app_database(app)
        rounds = services_of(app).sequencer
        driver = services_of(app).database.driver
        assert driver is not None
        assert database.sessionmaker is not None
        async with database.sessionmaker() as session:  # committed, not yet positioned
            await events.record_deletion(session, task_id=1, owner_id=1)
            await session.commit()
        engine = driver.engine
        driver.engine = RefusingConnections(engine)  # type: ignore[assignment]
        rounds.poke()
        await asyncio.sleep(0.3)  # several rounds refused meanwhile
        driver.engine = engine
        for _ in range(100):
            if not rounds.pending and not rounds.failing:
                break
            await asyncio.sleep(0.02)
        async with database.read_sessionmaker() as session:  # type: ignore[misc]
            _, newest = await event_log.bounds(session)

    assert newest == 1, "the event got its position once the database answered"
    # A record may reach caplog twice, by this handler and by the root logger's.
    warnings = {id(r) for r in caplog.records if "could not position" in r.getMessage()}
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]

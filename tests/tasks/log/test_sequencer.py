"""Tests of `tasks/log/sequencer.py`.

Each process positions what it commits, soon, and keeps trying while it cannot.

These run on the local PostgreSQL whatever backend the suite runs on: rounds
exist only there.
"""

from __future__ import annotations

import asyncio
import itertools
import logging
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from quart_tasks.services import services_of
from quart_tasks.storage.unit_of_work import unit_of_work
from quart_tasks.tasks.log import reads, records, sequencer
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
        async with (
            database.sessionmaker() as session,
            unit_of_work(session) as work,  # committed, not yet positioned
        ):
            await records.record_deletion(work, task_id=1, owner_id=1)
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
            _, newest = await reads.bounds(session)

    assert newest == 1, "the event got its position once the database answered"
    # A record may reach caplog twice, by this handler and by the root logger's.
    warnings = {id(r) for r in caplog.records if "could not position" in r.getMessage()}
    assert len(warnings) == 1, [r.getMessage() for r in caplog.records]


async def test_a_busy_process_starts_a_round_at_most_every_interval() -> None:
    """Commits every millisecond share rounds; a lone commit still gets one at once."""
    engine = SimpleNamespace(dialect=SimpleNamespace(name="postgresql"))
    rounds = sequencer.Sequencer(SimpleNamespace(engine=engine))  # type: ignore[arg-type]
    started: list[float] = []

    async def take_round() -> int:
        started.append(time.monotonic())
        return 0

    rounds.take_round = take_round  # type: ignore[method-assign]
    rounds.poke()
    await asyncio.sleep(0)
    lone = len(started)
    begin = time.monotonic()
    while time.monotonic() - begin < 0.1:
        rounds.poke()
        await asyncio.sleep(0.001)
    await asyncio.sleep(2 * sequencer.ROUND_INTERVAL)

    gaps = [b - a for a, b in itertools.pairwise(started)]
    assert lone == 1, "a lone commit is positioned at once"
    assert len(started) <= 0.1 / sequencer.ROUND_INTERVAL + 3, len(started)
    assert min(gaps) >= sequencer.ROUND_INTERVAL * 0.9

"""`tasks/store/bounds_reads.py`: reads of the event log's bounds of one moment share a
statement, and none takes an answer read before it began."""

from __future__ import annotations

import asyncio
from typing import Any, cast

import pytest

from quart_tasks.storage.driver import DatabaseUnavailable, Driver
from quart_tasks.tasks.store.bounds_reads import BoundsReads


class Bounds:
    def __init__(self, oldest: int, newest: int) -> None:
        self.oldest, self.newest = oldest, newest


class FakeDriver:
    """Answers each statement with the bounds it holds when the statement runs."""

    def __init__(self) -> None:
        self.newest = 10
        self.statements = 0
        self.gate: asyncio.Event | None = None
        self.asked = asyncio.Event()
        self.failure: BaseException | None = None

    async def first(self, _statement: Any, _values: dict[str, Any]) -> Bounds:
        self.statements += 1
        self.asked.set()
        answer = Bounds(1, self.newest)
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return answer


def reads_on(driver: FakeDriver) -> BoundsReads:
    return BoundsReads(lambda: cast(Driver, driver))


async def test_reads_of_one_moment_share_one_statement() -> None:
    driver = FakeDriver()
    reads = reads_on(driver)

    answers = await asyncio.gather(*(reads.read() for _ in range(50)))

    assert answers == [(1, 10)] * 50
    assert driver.statements == 1


async def test_a_read_that_begins_during_a_statement_waits_for_the_next() -> None:
    driver = FakeDriver()
    driver.gate = asyncio.Event()
    reads = reads_on(driver)
    first = asyncio.create_task(reads.read())
    await driver.asked.wait()
    driver.newest = 11  # an event positioned while the first statement runs

    second = asyncio.create_task(reads.read())
    driver.gate.set()

    assert await first == (1, 10)
    assert await second == (1, 11)
    assert driver.statements == 2


async def test_a_cancelled_read_leaves_the_others_their_answer() -> None:
    driver = FakeDriver()
    driver.gate = asyncio.Event()
    reads = reads_on(driver)
    leaving, staying = asyncio.create_task(reads.read()), asyncio.create_task(reads.read())
    await driver.asked.wait()

    leaving.cancel()
    driver.gate.set()

    assert await staying == (1, 10)
    with pytest.raises(asyncio.CancelledError):
        await leaving


async def test_an_outage_reaches_every_read_of_the_statement() -> None:
    driver = FakeDriver()
    driver.failure = DatabaseUnavailable("down")
    reads = reads_on(driver)

    answers = await asyncio.gather(reads.read(), reads.read(), return_exceptions=True)

    assert all(isinstance(answer, DatabaseUnavailable) for answer in answers)
    driver.failure = None
    assert await reads.read() == (1, 10)

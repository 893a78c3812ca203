"""`storage/gathering.py`: askers of one moment answered by one run, each with its own
answer or error."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence

import pytest

from quart_tasks.storage.gathering import Gatherer


class Doubler:
    """Answers each number with its double, and a negative one with its own error."""

    def __init__(self) -> None:
        self.runs: list[list[int]] = []
        self.gate: asyncio.Event | None = None
        self.failure: Exception | None = None

    async def __call__(self, asked: Sequence[int]) -> list[int | BaseException]:
        self.runs.append(list(asked))
        if self.gate is not None:
            await self.gate.wait()
        if self.failure is not None:
            raise self.failure
        return [ValueError(n) if n < 0 else n * 2 for n in asked]


async def test_askers_of_the_gathering_turns_share_one_run() -> None:
    doubler = Doubler()
    gatherer = Gatherer(doubler, max_per_run=10, gather_turns=2)
    first = asyncio.ensure_future(gatherer.ask(1))
    await asyncio.sleep(0)  # the next turn: still gathering
    second = asyncio.ensure_future(gatherer.ask(2))
    assert list(await asyncio.gather(first, second)) == [2, 4]
    assert doubler.runs == [[1, 2]]


async def test_each_asker_gets_its_own_error_and_an_error_of_the_run_reaches_all() -> None:
    doubler = Doubler()
    gatherer = Gatherer(doubler, max_per_run=10, gather_turns=1)
    answers = await asyncio.gather(gatherer.ask(3), gatherer.ask(-1), return_exceptions=True)
    assert answers[0] == 6
    assert isinstance(answers[1], ValueError)
    doubler.failure = ConnectionError("gone")
    failed = await asyncio.gather(gatherer.ask(1), gatherer.ask(2), return_exceptions=True)
    assert [type(answer) for answer in failed] == [ConnectionError, ConnectionError]


async def test_more_than_the_largest_batch_go_in_several_runs() -> None:
    doubler = Doubler()
    gatherer = Gatherer(doubler, max_per_run=2, gather_turns=1)
    assert await asyncio.gather(*(gatherer.ask(n) for n in range(5))) == [0, 2, 4, 6, 8]
    assert doubler.runs == [[0, 1], [2, 3], [4]]


async def test_serial_runs_one_at_a_time_and_the_askers_meanwhile_go_together_next() -> None:
    doubler = Doubler()
    doubler.gate = asyncio.Event()
    gatherer = Gatherer(doubler, max_per_run=10, serial=True)
    first = asyncio.ensure_future(gatherer.ask(1))
    await asyncio.sleep(0.01)
    assert doubler.runs == [[1]], "the first goes at once, alone"
    later = [asyncio.ensure_future(gatherer.ask(n)) for n in (2, 3, 4)]
    await asyncio.sleep(0)
    later[0].cancel()
    doubler.gate.set()
    assert await first == 2
    assert await asyncio.gather(*later[1:]) == [6, 8]
    assert doubler.runs == [[1], [3, 4]], "the cancelled asker was not asked for"
    with pytest.raises(asyncio.CancelledError):
        await later[0]


async def test_an_answer_short_of_its_askers_fails_them_all_rather_than_leave_one_waiting() -> None:
    async def one_answer_only(asked: Sequence[int]) -> list[int | BaseException]:
        return [asked[0]]

    gatherer = Gatherer(one_answer_only, max_per_run=10, gather_turns=1)
    answers = await asyncio.wait_for(
        asyncio.gather(gatherer.ask(1), gatherer.ask(2), return_exceptions=True), timeout=2
    )
    assert [type(answer) for answer in answers] == [RuntimeError, RuntimeError]

"""Reads of the event log's bounds that arrive together share one statement.

Every sync starts by reading the log's oldest and newest positions
(`reads.bounds`); a client with nothing new reads nothing else. The
answer is the same for every caller, so the reads a process starts within a
few turns of its event loop (`read_batches.GATHER_TURNS`) wait for one
statement together, as reads of tasks by id do. A read never takes the
answer of a statement that started before it: a sync still sees every event
positioned before it began.
"""

from __future__ import annotations

import asyncio
import contextvars
import typing

from sqlalchemy import ClauseElement

from quart_tasks.storage.driver import Driver, one_per_driver
from quart_tasks.tasks.log import reads
from quart_tasks.tasks.store.read_batches import GATHER_TURNS

Bounds = tuple[int, int]
_BOUNDS = typing.cast(ClauseElement, reads.bounds_query(postgresql=True))


class BoundsReads:
    """The log's bounds for one process, one statement for the reads of a few turns."""

    def __init__(self, driver: Driver, gather_turns: int = GATHER_TURNS) -> None:
        self.driver = driver
        self.gather_turns = gather_turns
        self._waiting: list[asyncio.Future[Bounds]] = []
        self._readers: set[asyncio.Task[None]] = set()

    async def read(self) -> Bounds:
        """The oldest and newest positions (0 for none), read after this call began."""
        loop = asyncio.get_running_loop()
        if not self._waiting:
            loop.call_soon(self._gather, self.gather_turns - 1)
        answer: asyncio.Future[Bounds] = loop.create_future()
        self._waiting.append(answer)
        return await answer

    def _gather(self, turns_left: int) -> None:
        if turns_left > 0:
            asyncio.get_running_loop().call_soon(self._gather, turns_left - 1)
            return
        waiting, self._waiting = self._waiting, []
        # Its own empty context: the reader serves many requests, not the first one's.
        reader = asyncio.create_task(self._read(waiting), context=contextvars.Context())
        self._readers.add(reader)
        reader.add_done_callback(self._readers.discard)

    async def _read(self, waiting: list[asyncio.Future[Bounds]]) -> None:
        waiting = [answer for answer in waiting if not answer.done()]  # cancelled: client gone
        if not waiting:
            return
        try:
            row = await self.driver.first(_BOUNDS, {})
        except asyncio.CancelledError:  # shutdown
            for answer in waiting:
                answer.cancel()
            raise
        except Exception as error:  # an outage (503) or a fault: each read meets it
            for answer in waiting:
                if not answer.done():
                    answer.set_exception(error)
            return
        bounds = (row.oldest or 0, row.newest or 0) if row is not None else (0, 0)
        for answer in waiting:
            if not answer.done():
                answer.set_result(bounds)


bounds_reads = one_per_driver(BoundsReads)
"""The process's `BoundsReads` for a driver's database."""

"""Reads of the event log's bounds that arrive together share one statement.

Every sync starts by reading the log's oldest and newest positions
(`reads.bounds`); a client with nothing new reads nothing else. The
answer is the same for every caller, so the reads a process starts within a
few turns of its event loop (`storage.gathering.GATHER_TURNS`) wait for one
statement together, as reads of tasks by id do. A read never takes the
answer of a statement that started before it: a sync still sees every event
positioned before it began.
"""

from __future__ import annotations

import sys
import typing
from collections.abc import Callable, Sequence

from sqlalchemy import ClauseElement

from quart_tasks.storage.driver import Driver
from quart_tasks.storage.gathering import GATHER_TURNS, Gatherer
from quart_tasks.tasks.log import reads

Bounds = tuple[int, int]
_BOUNDS = typing.cast(ClauseElement, reads.bounds_query(postgresql=True))


class BoundsReads:
    """The log's bounds for one process, one statement for the reads of a few turns."""

    def __init__(self, driver: Callable[[], Driver], gather_turns: int = GATHER_TURNS) -> None:
        self.driver = driver
        self._gatherer: Gatherer[None, Bounds] = Gatherer(
            self._read_all, max_per_run=sys.maxsize, gather_turns=gather_turns
        )

    async def read(self) -> Bounds:
        """The oldest and newest positions (0 for none), read after this call began."""
        return await self._gatherer.ask(None)

    async def _read_all(self, asked: Sequence[None]) -> list[Bounds]:
        bounds = reads.bounds_from(await self.driver().first(_BOUNDS, {}))
        return [bounds] * len(asked)

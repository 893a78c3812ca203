"""Reads of tasks by id that arrive together are read together: one statement for many.

A read by id costs the worker a pooled connection's checkout and return, a
round trip to PostgreSQL and asyncpg's work on each side of it, and costs
PostgreSQL a statement; the row itself is the least of it. Under load a worker
starts many reads in each turn of its event loop, so each process gathers the
reads of a few turns (a `storage.gathering.Gatherer`) and runs them as one
`SELECT ... WHERE id = ANY(...)`. A quiet server reads each task alone, a few
turns (microseconds) later.

Each read still answers only its own caller: the rows come back with their
owner, and a row reaches a read only if that read's caller may see it.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from quart_tasks.storage.driver import Driver, Row
from quart_tasks.storage.gathering import GATHER_TURNS, Gatherer
from quart_tasks.tasks.store import statements

MAX_READS = 256

ReadById = tuple[int, int | None]
"""A task's id, and the caller's id or None for a caller who may read every task."""


class ReadsById:
    """The reads by id of one process, `gather_turns` turns' worth to a statement."""

    def __init__(
        self,
        driver: Callable[[], Driver],
        max_per_run: int = MAX_READS,
        gather_turns: int = GATHER_TURNS,
    ) -> None:
        self.driver = driver
        self._gatherer: Gatherer[ReadById, Row | None] = Gatherer(
            self._read_all, max_per_run=max_per_run, gather_turns=gather_turns
        )

    async def read(self, task_id: int, owner_id: int | None) -> Row | None:
        """Task `task_id` if `owner_id` owns it (any owner's when None), else None."""
        return await self._gatherer.ask((task_id, owner_id))

    async def _read_all(self, reads: Sequence[ReadById]) -> list[Row | None]:
        task_ids = [str(task_id) for task_id, _ in reads]
        rows = await self.driver().rows(statements.fetch_many(), {"task_ids": task_ids})
        by_id = {row.id: row for row in rows}
        found = []
        for task_id, owner_id in reads:
            row = by_id.get(task_id)
            if row is not None and owner_id is not None and row.owner_id != owner_id:
                row = None
            found.append(row)
        return found

"""Task reads that arrive together are read together: one statement for many.

A read by id costs the worker a pooled connection's checkout and return, a
round trip to PostgreSQL and asyncpg's work on each side of it, and costs
PostgreSQL a statement; the row itself is the least of it. Under load a worker
starts many reads in each turn of its event loop, so each process gathers the
reads of a few turns (`ReadBatches.read`, `GATHER_TURNS`) and runs them as one
`SELECT ... WHERE id = ANY(...)`. A quiet server reads each task alone, a few
turns (microseconds) later.

Each read still answers only its own caller: the rows come back with their
owner, and a row reaches a read only if that read's caller may see it.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field

from quart_tasks.storage.driver import Driver, Row, one_per_driver
from quart_tasks.tasks.store import statements

MAX_BATCH = 256
GATHER_TURNS = 3
"""How many turns of the event loop a batch gathers reads for, the first read's
included. A request's way from its socket to its read takes the loop several
turns, so one turn catches only the requests of one readiness poll: at 64
connections S5's batches held 3-4 reads. Over three turns they hold more, and
`bench/ab.py` measured fewer statements as less CPU and more requests a second
(docs/performance/11-read-batch-over-three-turns.md); a fourth turn gained no more."""


@dataclass(slots=True)
class _Read:
    task_id: int
    owner_id: int | None
    """The caller's id, or None for a caller who may read every task."""
    found: asyncio.Future[Row | None] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class ReadBatches:
    """Reads the tasks one process asks for, `gather_turns` turns' worth at a time, on `driver`."""

    def __init__(
        self, driver: Driver, max_batch: int = MAX_BATCH, gather_turns: int = GATHER_TURNS
    ) -> None:
        self.driver = driver
        self.max_batch = max_batch
        self.gather_turns = gather_turns
        self._waiting: list[_Read] = []
        self._readers: set[asyncio.Task[None]] = set()

    async def read(self, task_id: int, owner_id: int | None) -> Row | None:
        """Task `task_id` if `owner_id` owns it (any owner's when None), else None."""
        read = _Read(task_id, owner_id)
        if not self._waiting:
            asyncio.get_running_loop().call_soon(self._gather, self.gather_turns - 1)
        self._waiting.append(read)
        return await read.found

    def _gather(self, turns_left: int) -> None:
        """Run at the start of each turn the batch still gathers for; then read."""
        if turns_left > 0:
            asyncio.get_running_loop().call_soon(self._gather, turns_left - 1)
        else:
            self._start_reading()

    def _start_reading(self) -> None:
        while self._waiting:
            batch = self._waiting[: self.max_batch]
            del self._waiting[: self.max_batch]
            # Its own empty context: the reader serves many requests, not the first one's.
            reader = asyncio.create_task(self._read(batch), context=contextvars.Context())
            self._readers.add(reader)
            reader.add_done_callback(self._readers.discard)

    async def _read(self, batch: list[_Read]) -> None:
        batch = [read for read in batch if not read.found.done()]  # cancelled: client gone
        if not batch:
            return
        try:
            rows = await self.driver.rows(
                statements.fetch_many(), {"task_ids": [str(read.task_id) for read in batch]}
            )
        except asyncio.CancelledError:  # shutdown
            for read in batch:
                read.found.cancel()
            raise
        except Exception as error:  # an outage (503) or a fault: each read of the batch meets it
            for read in batch:
                if not read.found.done():
                    read.found.set_exception(error)
            return
        by_id = {row.id: row for row in rows}
        for read in batch:
            row = by_id.get(read.task_id)
            if row is not None and read.owner_id is not None and row.owner_id != read.owner_id:
                row = None
            if not read.found.done():
                read.found.set_result(row)


read_batches = one_per_driver(ReadBatches)
"""The process's `ReadBatches` for a driver's database."""

"""Creates that arrive together are written together: one statement and one commit for many.

Each create alone is a statement and a commit of its own, each commit with its
own WAL flush, however many arrive at once. When this was built, every create
also took the event log's order lock and notified listeners, which writers no
longer do (see `tasks.log.signals`); then, 20 connections creating at once
cost PostgreSQL about 330 µs of CPU a task, against 75 a task when the same
tasks were written 8 to a statement.

So each process writes its creates through one `CreateBatches`: a create that
arrives while none is being written goes at once, alone, as before; those that
arrive while one is being written wait for it, then go together (up to
`MAX_BATCH`), like a database's group commit. A quiet server adds no wait;
a busy one writes more tasks per statement. Each task is still acknowledged
only once the statement that wrote it has committed.

A batch that PostgreSQL refuses (say a task whose owner was deleted a moment
before) is written again one task at a time, so only that request fails.
"""

from __future__ import annotations

import asyncio
import contextvars
from dataclasses import dataclass, field
from datetime import datetime

import asyncpg

from quart_tasks.storage.driver import Driver, Row, one_per_driver
from quart_tasks.storage.outages import unavailable
from quart_tasks.tasks.store import writes

MAX_BATCH = 64


@dataclass(slots=True)
class _Create:
    owner_id: int
    title: str
    done: bool
    now: datetime
    written: asyncio.Future[Row] = field(
        default_factory=lambda: asyncio.get_running_loop().create_future()
    )


class CreateBatches:
    """Writes the creates of one process, a batch at a time, on `driver`."""

    def __init__(self, driver: Driver, max_batch: int = MAX_BATCH) -> None:
        self.driver = driver
        self.max_batch = max_batch
        self._waiting: list[_Create] = []
        self._writer: asyncio.Task[None] | None = None

    async def create(self, owner_id: int, title: str, done: bool, now: datetime) -> Row:
        """A new task and its `task.created` event, committed: the task's row."""
        create = _Create(owner_id, title, done, now)
        self._waiting.append(create)
        if self._writer is None:
            # Its own empty context: the writer serves many requests, not the first one's.
            self._writer = asyncio.create_task(self._write_waiting(), context=contextvars.Context())
        return await create.written

    async def _write_waiting(self) -> None:
        try:
            while self._waiting:
                batch = self._waiting[: self.max_batch]
                del self._waiting[: self.max_batch]
                # A request cancelled while it waited (its client left) needs no task.
                await self._write([create for create in batch if not create.written.done()])
        finally:
            self._writer = None
            for create in self._waiting:  # left only when the writer was cancelled (shutdown)
                create.written.cancel()
            self._waiting.clear()

    async def _write(self, batch: list[_Create]) -> None:
        if not batch:
            return
        statement, values = writes.creations_with_events(
            [create.owner_id for create in batch],
            [create.title for create in batch],
            [create.done for create in batch],
            [create.now for create in batch],
        )
        try:
            rows = await self.driver.rows(statement, values)
        except asyncpg.PostgresError as error:
            if unavailable(error) or len(batch) == 1:  # unavailable to all, or its own fault
                for create in batch:
                    _settle(create, error=error)
                return
            # The statement was refused, not the link:
            for create in batch:  # one at a time: only the one at fault fails
                await self._write([create])
            return
        except asyncio.CancelledError:
            for create in batch:
                create.written.cancel()
            raise
        except Exception as error:  # the database is unavailable: so it is to every request
            for create in batch:
                _settle(create, error=error)
            return
        by_position = {row.position: row for row in rows}
        for position, create in enumerate(batch, start=1):
            _settle(create, row=by_position.get(position))


def _settle(create: _Create, *, row: Row | None = None, error: BaseException | None = None) -> None:
    if create.written.done():  # cancelled: its client has gone
        return
    if row is not None:
        create.written.set_result(row)
    else:
        create.written.set_exception(
            error or RuntimeError("a batch of creates returned no row for one of them")
        )


create_batches = one_per_driver(CreateBatches)
"""The process's `CreateBatches` for a driver's database."""

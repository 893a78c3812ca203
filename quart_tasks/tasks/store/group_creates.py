"""Creates that arrive together are written together: one statement and one commit for many.

Each create alone is a statement and a commit of its own, each commit with its
own WAL flush, however many arrive at once. When this was built, every create
also took the event log's order lock and notified listeners, which writers no
longer do (see `tasks.log.signals`); then, 20 connections creating at once
cost PostgreSQL about 330 µs of CPU a task, against 75 a task when the same
tasks were written 8 to a statement.

So each process writes its creates through one `GroupCreates` (a serial
`storage.gathering.Gatherer`): a create that arrives while none is being
written goes at once, alone; those that arrive while one is being written wait
for it, then go together (up to `MAX_CREATES`), like a database's group commit.
A quiet server adds no wait; a busy one writes more tasks per statement. Each
task is still acknowledged only once the statement that wrote it has committed.

A batch that PostgreSQL refuses (say a task whose owner was deleted a moment
before) is written again one task at a time, so only that request fails.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime

import asyncpg

from quart_tasks.storage.driver import Driver, Row
from quart_tasks.storage.gathering import Gatherer
from quart_tasks.storage.outages import unavailable
from quart_tasks.tasks.store import writes

MAX_CREATES = 64

NewTask = tuple[int, str, bool, datetime]
"""Its owner's id, title, `done` and creation time."""


class GroupCreates:
    """Writes the creates of one process, a group at a time."""

    def __init__(self, driver: Callable[[], Driver], max_per_run: int = MAX_CREATES) -> None:
        self.driver = driver
        self._gatherer: Gatherer[NewTask, Row] = Gatherer(
            self._write_all, max_per_run=max_per_run, serial=True
        )

    async def create(self, owner_id: int, title: str, done: bool, now: datetime) -> Row:
        """A new task and its `task.created` event, committed: the task's row."""
        return await self._gatherer.ask((owner_id, title, done, now))

    async def _write_all(self, group: Sequence[NewTask]) -> list[Row | BaseException]:
        statement, values = writes.creations_with_events(
            [owner_id for owner_id, _, _, _ in group],
            [title for _, title, _, _ in group],
            [done for _, _, done, _ in group],
            [now for _, _, _, now in group],
        )
        try:
            rows = await self.driver().rows(statement, values)
        except asyncpg.PostgresError as error:
            if unavailable(error) or len(group) == 1:  # unavailable to all, or its own fault
                raise
            # The statement was refused, not the link: one at a time, only the one at
            # fault fails.
            return [await self._write_one(create) for create in group]
        by_position = {row.position: row for row in rows}
        return [
            by_position.get(position)
            or RuntimeError("a group of creates returned no row for one of them")
            for position in range(1, len(group) + 1)
        ]

    async def _write_one(self, create: NewTask) -> Row | BaseException:
        try:
            (written,) = await self._write_all([create])
        except Exception as error:
            return error
        return written

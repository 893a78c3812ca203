"""Tasks on PostgreSQL, straight on asyncpg where a request allows it, in few statements.

The same answers as `portable.PortableTaskStore`, for less CPU on both sides (figures
in docs/performance/): a reading request's statements skip the session
(`storage.driver`), reads by id of the same moment go as one statement
(`reads_by_id`), and a write that is one statement with its event runs
alone in autocommit, creates of the same moment together (`group_creates`).
Whatever a request cannot do so goes the portable way:

- reads once the request's session holds a connection, or in a request that writes;
- a create in a unit of work that has written already (with an `Idempotency-Key`),
  as one statement with its event on the session;
- a change with `If-Match` (its versions are an expanding IN, which needs SQLAlchemy's
  rendering), and every delete.

Off with `DB_FAST_PATH=false`; the tests run both ways on PostgreSQL.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import asyncpg
from quart import request
from sqlalchemy.sql import Executable

from quart_tasks.auth.caller import Principal
from quart_tasks.idempotency.store import KeyTaken
from quart_tasks.storage.base import utcnow
from quart_tasks.storage.driver import Driver
from quart_tasks.storage.sessions import READ_ONLY_METHODS, Database, request_session_free
from quart_tasks.storage.unit_of_work import UnitOfWork
from quart_tasks.tasks.log import purges, signals
from quart_tasks.tasks.models import TaskRecord
from quart_tasks.tasks.scope import reaches_every_task
from quart_tasks.tasks.store import writes
from quart_tasks.tasks.store.bounds_reads import BoundsReads
from quart_tasks.tasks.store.group_creates import GroupCreates
from quart_tasks.tasks.store.interface import KeyedCreate, PreparedUpdate, check_id, task_not_found
from quart_tasks.tasks.store.reads_by_id import ReadsById
from quart_tasks.tasks.store.session import SessionSteps


class FastTaskStore(SessionSteps):
    """A `TaskStore`, and `KeyedCreates`: on asyncpg where it can, otherwise the
    session's steps."""

    def __init__(self, database: Database) -> None:
        self.database = database
        self.reads_by_id = ReadsById(self._driver)
        self.bounds_reads = BoundsReads(self._driver)
        self.group_creates = GroupCreates(self._driver)

    def _driver(self) -> Driver:
        driver = self.database.driver
        if driver is None:
            raise RuntimeError("the fast task store needs the database's driver: is it connected?")
        return driver

    def _reads_on_driver(self) -> bool:
        """A reading request (GET, HEAD) whose session holds no connection: on PostgreSQL
        it has no transaction to keep its statements in (see `Database.connect`)."""
        return request.method in READ_ONLY_METHODS and request_session_free()

    async def read(self, statement: Executable, values: Mapping[str, Any]) -> Sequence[Any]:
        if self._reads_on_driver():
            return await self._driver().rows(statement, values)  # type: ignore[arg-type]
        return await super().read(statement, values)

    async def log_bounds(self) -> tuple[int, int]:
        """With the other reads of the bounds of the moment (`bounds_reads`), when on the
        driver."""
        if not self._reads_on_driver():
            return await super().log_bounds()
        return await self.bounds_reads.read()

    async def fetch(self, caller: Principal, task_id: int) -> TaskRecord:
        """With the other reads by id of the moment (`reads_by_id`), when on the driver."""
        if not self._reads_on_driver():
            return await super().fetch(caller, task_id)
        check_id(task_id)
        owner_id = None if reaches_every_task(caller) else caller.user_id
        row = await self.reads_by_id.read(task_id, owner_id)
        if row is None:
            raise task_not_found()
        return row

    async def create(
        self, work: UnitOfWork, caller: Principal, *, title: str, done: bool
    ) -> TaskRecord:
        """Alone: with the other creates of the moment (`group_creates`), committed when it
        returns. Otherwise one statement with its event, in `work`."""
        if not work.claim_autocommit():
            (task,) = await self.create_many(work, caller, [(title, done)])
            return task
        task = await self.group_creates.create(caller.user_id, title, done, utcnow())
        signals.announce_committed()
        work.after_commit("purge old task events", purges.purge_some)
        return task

    async def create_many(
        self, work: UnitOfWork, caller: Principal, given: Sequence[tuple[str, bool]]
    ) -> Sequence[TaskRecord]:
        """As one statement with their events, in `work`."""
        if not given:
            return []
        now = utcnow()
        statement, values = writes.creations_with_events(
            [caller.user_id] * len(given),
            [title for title, _ in given],
            [done for _, done in given],
            [now] * len(given),
        )
        rows = (await work.session.execute(statement, values)).all()
        work.on_commit(signals.announce_committed)
        work.after_commit("purge old task events", purges.purge_some)
        return sorted(rows, key=lambda row: row.position)

    def writes_creates_in_autocommit(self, work: UnitOfWork) -> bool:
        return not work.session.in_transaction()

    async def read_in_autocommit(
        self, statement: Executable, values: Mapping[str, Any]
    ) -> Sequence[Any]:
        return await self._driver().rows(statement, values)  # type: ignore[arg-type]

    async def create_keyed_in_autocommit(
        self,
        work: UnitOfWork,
        caller: Principal,
        given: Sequence[KeyedCreate],
        expires_at: datetime,
    ) -> Sequence[Any]:
        if not work.claim_autocommit():
            raise RuntimeError("a keyed batch of creates must be the unit of work's one write")
        statement, values = writes.keyed_creations_with_events(
            caller.user_id,
            [create.title for create in given],
            [create.done for create in given],
            utcnow(),
            [create.key for create in given],
            [create.fingerprint for create in given],
            expires_at,
        )
        try:
            rows = await self._driver().rows(statement, values)
        except asyncpg.UniqueViolationError:
            raise KeyTaken() from None
        signals.announce_committed()
        work.after_commit("purge old task events", purges.purge_some)
        return sorted(rows, key=lambda row: row.position)

    async def apply_update(self, work: UnitOfWork, update: PreparedUpdate) -> TaskRecord | None:
        """Without `If-Match` and in autocommit: the update and its event as one statement on the
        driver, in autocommit (`writes.update_with_event`)."""
        if update.checks_version or not work.claim_autocommit():
            return await super().apply_update(work, update)
        found = await self._driver().rows(
            *writes.update_with_event(update.statement, update.values)
        )
        if not found:
            return None
        updated: TaskRecord = found[0]
        if updated.updated_at == update.changed_at:  # set only when a value changed
            signals.announce_committed()
        return updated

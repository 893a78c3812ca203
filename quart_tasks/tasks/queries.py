"""Every statement the tasks routes run, each scoped to its caller (see `scope`).

Writes that carry an `If-Match` check the version in the UPDATE or DELETE
itself, so of two clients racing with the same ETag exactly one wins.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Update, delete
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.auth.caller import Principal
from quart_tasks.auth.models import username_key
from quart_tasks.services import services
from quart_tasks.storage.base import utcnow
from quart_tasks.storage.driver import Driver
from quart_tasks.storage.ids import MAX_BIG_ID
from quart_tasks.storage.sessions import is_postgresql, read_rows, reading_driver
from quart_tasks.tasks import events, statements
from quart_tasks.tasks.create_batches import create_batches
from quart_tasks.tasks.models import Task, TaskRecord
from quart_tasks.tasks.read_batches import read_batches
from quart_tasks.tasks.scope import list_scope, reachable_by, reaches_every_task
from quart_tasks.tasks.sorting import SortOrder
from quart_tasks.web.conditional import VersionMatch, precondition_failed
from quart_tasks.web.errors import APIError, not_found
from quart_tasks.web.pagination import PageRequest


def task_not_found() -> APIError:
    return not_found("Task not found")


def _check_id(task_id: int) -> None:
    """An id past BIGINT cannot exist, and must not reach the driver (it would overflow)."""
    if task_id > MAX_BIG_ID:
        raise task_not_found()


@dataclass(frozen=True, slots=True)
class TaskFilter:
    done: bool | None = None
    title_contains: str | None = None
    owner: str | None = None

    def shape(self, caller: Principal, sort: SortOrder) -> statements.ListShape:
        return statements.ListShape(
            sort=sort.name,
            owner=list_scope(caller, self.owner),
            done=self.done is not None,
            title=bool(self.title_contains),
        )

    def values(self, caller: Principal) -> dict[str, Any]:
        """The values the shape's statements bind."""
        return {
            "owner_id": caller.user_id,
            "owner_key": username_key(self.owner) if self.owner else None,
            "done": self.done,
            "title_pattern": (
                statements.like_pattern(self.title_contains) if self.title_contains else None
            ),
        }


async def list_page(
    caller: Principal,
    filters: TaskFilter,
    sort: SortOrder,
    page: PageRequest,
) -> tuple[Sequence[TaskRecord], int]:
    """One page by offset, and how many tasks match in all."""
    shape, values = filters.shape(caller, sort), filters.values(caller)
    rows = await read_rows(
        statements.page(shape), {**values, "limit": page.page_size, "offset": page.offset}
    )
    if rows:
        return rows, rows[0].total
    counted = await read_rows(statements.count(shape), values)
    return rows, counted[0][0]


async def list_after(
    caller: Principal,
    filters: TaskFilter,
    sort: SortOrder,
    key: list[Any] | None,
    page_size: int,
) -> tuple[Sequence[TaskRecord], bool]:
    """Up to `page_size` tasks past `key` (from the start without one), and whether more follow."""
    values = {**filters.values(caller), "limit": page_size + 1}
    if key is not None:
        values.update(sort.key_values(key))
    statement = statements.walk(filters.shape(caller, sort), after_key=key is not None)
    tasks = await read_rows(statement, values)
    return tasks[:page_size], len(tasks) > page_size


async def fetch_task(caller: Principal, task_id: int) -> TaskRecord:
    """Read on the request's session, or, when the request only reads, on the driver
    together with the other reads of the moment (`read_batches`)."""
    _check_id(task_id)
    any_owner = reaches_every_task(caller)
    driver = reading_driver()
    if driver is not None:
        row = await read_batches(driver).read(task_id, None if any_owner else caller.user_id)
        if row is None:
            raise task_not_found()
        return row
    found = await read_rows(
        statements.fetch(any_owner=any_owner), {"task_id": task_id, "owner_id": caller.user_id}
    )
    if not found:
        raise task_not_found()
    task: TaskRecord = found[0]
    return task


async def add_task(
    session: AsyncSession, caller: Principal, *, title: str, done: bool, alone: bool = False
) -> TaskRecord:
    """A new task and its event in the session's transaction; the caller commits.

    `alone`: the request writes nothing else. On PostgreSQL the task and its
    event are one statement, atomic by itself, so then it is written straight
    on the driver in autocommit, with any other creates of the moment
    (`create_batches`), and committed when it returns: no BEGIN, no COMMIT.
    """
    now = utcnow()
    task: TaskRecord
    if is_postgresql(session):
        driver = services().database.driver if alone and not session.in_transaction() else None
        if driver is not None:
            task = await create_batches(driver).create(caller.user_id, title, done, now)
            events.announce_committed()
            return task
        statement, values = events.creation_with_event(caller.user_id, title, done, now)
        task = (await session.execute(statement, values)).one()
        events.note_written(session)
        return task
    values = {"owner_id": caller.user_id, "title": title, "done": done, "now": now}
    task = (await session.execute(statements.create(), values)).one()
    await events.record_change(session, "task.created", task)
    return task


def _version_conditions(expected: VersionMatch | None) -> list[ColumnElement[bool]]:
    if expected is None or expected.any_version:
        return []
    return [Task.version.in_(expected.versions)]


async def _refused(caller: Principal, task_id: int) -> APIError:
    """Why a guarded write touched nothing: the task is gone (404) or has moved on (412)."""
    current = await fetch_task(caller, task_id)
    return precondition_failed(current.version)


async def update_task(
    session: AsyncSession,
    caller: Principal,
    task_id: int,
    changes: Mapping[str, Any],
    expected: VersionMatch | None = None,
) -> TaskRecord:
    """Apply `changes` if the version is still `expected`.

    `version` and `updated_at` move only when a value actually changes, so an
    ETag changes with every change and only then.
    """
    _check_id(task_id)
    if not changes:
        task = await fetch_task(caller, task_id)
        if expected is not None and not expected.accepts(task.version):
            raise precondition_failed(task.version)
        return task
    fields = tuple(sorted(changes))
    check_version = expected is not None and not expected.any_version
    statement = statements.change(
        fields, any_owner=reaches_every_task(caller), check_version=check_version
    )
    changed_at = utcnow()
    values = {
        **{f"new_{field}": changes[field] for field in fields},
        "task_id": task_id,
        "caller_id": caller.user_id,
        "now": changed_at,
        "versions": sorted(expected.versions) if check_version and expected else [],
    }
    driver = services().database.driver
    if driver is not None and not check_version and not session.in_transaction():
        updated = await _update_on_driver(driver, statement, values, changed_at)
    else:
        updated = await _update_in_session(session, statement, values, changed_at)
    if updated is None:
        raise await _refused(caller, task_id)
    await events.purge_some(session)
    return updated


async def _update_in_session(
    session: AsyncSession, statement: Update, values: dict[str, Any], changed_at: datetime
) -> TaskRecord | None:
    updated: TaskRecord | None = (await session.execute(statement, values)).one_or_none()
    if updated is None:
        await session.rollback()
        return None
    if updated.updated_at == changed_at:  # set only when a value changed
        await events.record_change(session, "task.updated", updated)
    await session.commit()
    return updated


async def _update_on_driver(
    driver: Driver, statement: Update, values: dict[str, Any], changed_at: datetime
) -> TaskRecord | None:
    """The change and its event as one statement straight on asyncpg (PostgreSQL), in
    autocommit (`events.change_with_event`). An expanding IN (the `If-Match` versions)
    needs SQLAlchemy's rendering, so guarded changes stay in the session."""
    found = await driver.rows(*events.change_with_event(statement, values))
    if not found:
        return None
    updated: TaskRecord = found[0]
    if updated.updated_at == changed_at:  # set only when a value changed
        events.announce_committed()
    return updated


async def delete_task(
    session: AsyncSession, caller: Principal, task_id: int, expected: VersionMatch | None = None
) -> None:
    _check_id(task_id)
    owner_id = await session.scalar(
        delete(Task)
        .where(Task.id == task_id, *reachable_by(caller), *_version_conditions(expected))
        .returning(Task.owner_id)
    )
    if owner_id is None:
        await session.rollback()
        raise await _refused(caller, task_id)
    await events.record_deletion(session, task_id, owner_id)
    await session.commit()
    await events.purge_some(session)

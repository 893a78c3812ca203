"""Every step of a task store through SQLAlchemy's session."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, TypeGuard

from sqlalchemy import ColumnElement, delete
from sqlalchemy.sql import Executable

from quart_tasks.auth.caller import Principal
from quart_tasks.services import services
from quart_tasks.storage.base import utcnow
from quart_tasks.storage.sessions import db_session
from quart_tasks.storage.unit_of_work import UnitOfWork
from quart_tasks.tasks.log import purges, reads, records
from quart_tasks.tasks.models import Task, TaskRecord
from quart_tasks.tasks.schemas import TaskOut
from quart_tasks.tasks.scope import reachable_by, reaches_every_task
from quart_tasks.tasks.sorting import SortOrder
from quart_tasks.tasks.store import statements
from quart_tasks.tasks.store.interface import (
    PreparedUpdate,
    RenderedPage,
    TaskFilter,
    check_id,
    task_not_found,
)
from quart_tasks.web.conditional import VersionMatch, precondition_failed
from quart_tasks.web.errors import APIError
from quart_tasks.web.pagination import PageRequest, Total


class SessionSteps:
    """Every step of a `TaskStore` through SQLAlchemy's session: the request's, or the
    unit of work's. The portable store is these steps alone; the fast store runs some
    of them another way (`read`, `fetch`, `create`, `apply`, `log_bounds`) and falls
    back on these for the rest."""

    async def list_rendered(
        self,
        caller: Principal,
        filters: TaskFilter,
        sort: SortOrder,
        page: PageRequest,
        count_limit: int,
    ) -> RenderedPage:
        """`list_page`, its tasks written as JSON: by PostgreSQL where it is the database
        (`task_json`), which spares the worker reading the rows into models and
        writing them out."""
        rendered = services().database.is_postgresql
        rows, total = await self.list_page(
            caller, filters, sort, page, count_limit, rendered=rendered
        )
        if rendered:
            items = [row.json for row in rows]
        else:
            items = [TaskOut.model_validate(row).model_dump_json() for row in rows]
        return RenderedPage("[" + ",".join(items) + "]", total)

    async def list_page(
        self,
        caller: Principal,
        filters: TaskFilter,
        sort: SortOrder,
        page: PageRequest,
        count_limit: int,
        *,
        rendered: bool = False,
    ) -> tuple[Sequence[Any], Total]:
        """One page by offset, and how many tasks match in all: exactly, or with `q`, up
        to `count_limit` (counting one more, to tell that there are more). Its rows are
        tasks, or if `rendered` their JSON (see `statements.page`)."""
        shape = filters.shape(caller, sort)
        values = {**filters.values(caller), "count_window": count_limit + 1}
        rows = await self.read(
            statements.page(shape, rendered=rendered),
            {
                **values,
                "limit": page.page_size,
                "offset": page.offset,
                "window": page.offset + page.page_size,
            },
        )
        if rows:
            counted = rows[0].total
        elif page.offset == 0:
            counted = 0  # nothing matches: no need to read the matches again to count them
        else:
            counted = (await self.read(statements.count(shape), values))[0][0]
        if shape.title and counted > count_limit:
            return rows, Total(count_limit, exact=False)
        return rows, Total(counted)

    async def list_after(
        self,
        caller: Principal,
        filters: TaskFilter,
        sort: SortOrder,
        key: list[Any] | None,
        page_size: int,
    ) -> tuple[Sequence[TaskRecord], bool]:
        """Up to `page_size` tasks past `key` (from the start without one), and whether
        more follow."""
        values = {**filters.values(caller), "limit": page_size + 1}
        if key is not None:
            values.update(sort.key_values(key))
        statement = statements.walk(filters.shape(caller, sort), after_key=key is not None)
        tasks = await self.read(statement, values)
        return tasks[:page_size], len(tasks) > page_size

    async def log_bounds(self) -> tuple[int, int]:
        """The event log's oldest and newest positions, 0 for none (`reads.bounds`)."""
        postgresql = services().database.is_postgresql
        return reads.bounds_from(
            (await self.read(reads.bounds_query(postgresql=postgresql), {}))[0]
        )

    async def fetch(self, caller: Principal, task_id: int) -> TaskRecord:
        check_id(task_id)
        found = await self.read(
            statements.fetch(any_owner=reaches_every_task(caller)),
            {"task_id": task_id, "owner_id": caller.user_id},
        )
        if not found:
            raise task_not_found()
        task: TaskRecord = found[0]
        return task

    async def create(
        self, work: UnitOfWork, caller: Principal, *, title: str, done: bool
    ) -> TaskRecord:
        """A new task and its event, in `work`."""
        (task,) = await self.create_many(work, caller, [(title, done)])
        return task

    async def create_many(
        self, work: UnitOfWork, caller: Principal, given: Sequence[tuple[str, bool]]
    ) -> Sequence[TaskRecord]:
        """New tasks of (title, done), in that order, and their events, in `work`."""
        created = []
        for title, done in given:
            values = {"owner_id": caller.user_id, "title": title, "done": done, "now": utcnow()}
            task: TaskRecord = (await work.session.execute(statements.create(), values)).one()
            await records.record_change(work, "task.created", task)
            created.append(task)
        work.after_commit("purge old task events", purges.purge_some)
        return created

    async def update(
        self,
        work: UnitOfWork,
        caller: Principal,
        task_id: int,
        changes: Mapping[str, Any],
        expected: VersionMatch | None = None,
    ) -> TaskRecord:
        """Apply `changes` if the version is still `expected`.

        `version` and `updated_at` move only when a value actually changes, so an
        ETag changes with every change and only then.
        """
        check_id(task_id)
        if not changes:
            task = await self.fetch(caller, task_id)
            if expected is not None and not expected.accepts(task.version):
                raise precondition_failed(task.version)
            return task
        update = self.prepare_update(caller, task_id, changes, expected)
        updated = await self.apply_update(work, update)
        if updated is None:
            raise await self.refusal(caller, task_id, checked_version=update.checks_version)
        work.after_commit("purge old task events", purges.purge_some)
        return updated

    async def delete(
        self,
        work: UnitOfWork,
        caller: Principal,
        task_id: int,
        expected: VersionMatch | None = None,
    ) -> None:
        check_id(task_id)
        owner_id = await work.session.scalar(
            delete(Task)
            .where(Task.id == task_id, *reachable_by(caller), *_version_conditions(expected))
            .returning(Task.owner_id)
        )
        if owner_id is None:
            raise await self.refusal(caller, task_id, checked_version=_checks_version(expected))
        await records.record_deletion(work, task_id, owner_id)
        work.after_commit("purge old task events", purges.purge_some)

    async def read(self, statement: Executable, values: Mapping[str, Any]) -> Sequence[Any]:
        """A SELECT's rows, on the request's session."""
        return (await db_session().execute(statement, values)).all()

    def prepare_update(
        self,
        caller: Principal,
        task_id: int,
        changes: Mapping[str, Any],
        expected: VersionMatch | None,
    ) -> PreparedUpdate:
        fields = tuple(sorted(changes))
        check_version = _checks_version(expected)
        changed_at = utcnow()
        return PreparedUpdate(
            statement=statements.task_update(
                fields, any_owner=reaches_every_task(caller), check_version=check_version
            ),
            values={
                **{f"new_{field}": changes[field] for field in fields},
                "task_id": task_id,
                "caller_id": caller.user_id,
                "now": changed_at,
                "versions": sorted(expected.versions) if _checks_version(expected) else [],
            },
            changed_at=changed_at,
            checks_version=check_version,
        )

    async def apply_update(self, work: UnitOfWork, update: PreparedUpdate) -> TaskRecord | None:
        """The change and, if it changed a value, its event, in `work`; None if it touched
        nothing (the task is gone, or not the caller's, or past the expected version)."""
        updated: TaskRecord | None = (
            await work.session.execute(update.statement, update.values)
        ).one_or_none()
        if updated is not None and updated.updated_at == update.changed_at:
            await records.record_change(work, "task.updated", updated)
        return updated

    async def refusal(self, caller: Principal, task_id: int, *, checked_version: bool) -> APIError:
        """Why a guarded write touched nothing: the task is gone (404) or has moved on (412).

        A write that checked no version touched nothing because the task was not there
        (or not the caller's) when it ran: 404, even if the task has been created since
        and the read below would find it."""
        if not checked_version:
            return task_not_found()
        current = await self.fetch(caller, task_id)
        return precondition_failed(current.version)


def _checks_version(expected: VersionMatch | None) -> TypeGuard[VersionMatch]:
    """Whether `expected` names versions (`If-Match: *` or none names no version)."""
    return expected is not None and not expected.any_version


def _version_conditions(expected: VersionMatch | None) -> list[ColumnElement[bool]]:
    if not _checks_version(expected):
        return []
    return [Task.version.in_(expected.versions)]

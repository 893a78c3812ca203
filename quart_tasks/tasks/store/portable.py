"""Where tasks are kept: one interface, the portable implementation, and the choice between them.

Every statement is scoped to its caller (see `scope`). Writes that carry an
`If-Match` check the version in the UPDATE or DELETE itself, so of two clients
racing with the same ETag exactly one wins. Each write adds its event to the
log (`log.records`) in its own transaction, and asks its unit of work to purge old
events once committed.

`PortableTaskStore` runs everything through SQLAlchemy's session, on SQLite and
PostgreSQL alike. On PostgreSQL, `fast.FastTaskStore` runs what it can
straight on asyncpg, in batches. The factory picks one at start-up
(`uses_fast_path`: PostgreSQL, and `DB_FAST_PATH` on).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeGuard

from sqlalchemy import ColumnElement, delete, make_url
from sqlalchemy.sql import Executable

from quart_tasks.auth.caller import Principal
from quart_tasks.auth.models import username_key
from quart_tasks.services import services
from quart_tasks.storage.base import utcnow
from quart_tasks.storage.ids import MAX_BIG_ID
from quart_tasks.storage.sessions import db_session
from quart_tasks.storage.unit_of_work import UnitOfWork
from quart_tasks.tasks.log import purges, reads, records
from quart_tasks.tasks.models import Task, TaskRecord
from quart_tasks.tasks.schemas import TaskOut
from quart_tasks.tasks.scope import list_scope, reachable_by, reaches_every_task
from quart_tasks.tasks.sorting import SortOrder
from quart_tasks.tasks.store import statements
from quart_tasks.web.conditional import VersionMatch, precondition_failed
from quart_tasks.web.errors import APIError, not_found
from quart_tasks.web.pagination import PageRequest, Total


def task_not_found() -> APIError:
    return not_found("Task not found")


def check_id(task_id: int) -> None:
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
            done=self.done,
            title=bool(self.title_contains),
        )

    def values(self, caller: Principal) -> dict[str, Any]:
        """The values the shape's statements bind."""
        return {
            "owner_id": caller.user_id,
            "owner_key": username_key(self.owner) if self.owner else None,
            "title_pattern": (
                statements.like_pattern(self.title_contains) if self.title_contains else None
            ),
        }


@dataclass(frozen=True, slots=True)
class RenderedPage:
    """A page's tasks as one JSON array, each as `TaskOut` writes it, and their total."""

    items_json: str
    total: Total


@dataclass(frozen=True, slots=True)
class KeyedCreate:
    """A create that records its result under an idempotency key."""

    title: str
    done: bool
    key: str
    fingerprint: str


@dataclass(frozen=True, slots=True)
class Change:
    """A change's statement and values, as `statements.change` binds them."""

    statement: Any
    values: dict[str, Any]
    changed_at: datetime
    checks_version: bool


class PortableTaskStore:
    """Tasks through SQLAlchemy's session: the request's, or the unit of work's.

    Its public methods are the interface the routes use; `FastTaskStore` overrides
    the steps it runs another way (`read`, `fetch`, `create`, `apply`).
    """

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
        oldest, newest = (await self.read(reads.bounds_query(postgresql=postgresql), {}))[0]
        return oldest or 0, newest or 0

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
            await records.record_change(work.session, "task.created", task)
            created.append(task)
        work.after_commit("purge old task events", purges.purge_some)
        return created

    def writes_creates_alone(self, work: UnitOfWork) -> bool:
        """Whether a batch of nothing but creates may go as `create_keyed_alone`."""
        return False

    async def read_alone(self, statement: Executable, values: Mapping[str, Any]) -> Sequence[Any]:
        """A SELECT's rows outside any unit of work (where `writes_creates_alone`)."""
        raise NotImplementedError

    async def create_keyed_alone(
        self,
        work: UnitOfWork,
        caller: Principal,
        given: Sequence[KeyedCreate],
        expires_at: datetime,
    ) -> Sequence[Any]:
        """Where `writes_creates_alone`: new tasks, their events and their idempotency
        records as one statement, committed by itself; each row with `json` (see
        `writes.keyed_creations_with_events`). `KeyTaken` if a key was recorded meanwhile."""
        raise NotImplementedError

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
        change = self.change(caller, task_id, changes, expected)
        updated = await self.apply(work, change)
        if updated is None:
            raise await self.refusal(caller, task_id, checked_version=change.checks_version)
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
        await records.record_deletion(work.session, task_id, owner_id)
        work.after_commit("purge old task events", purges.purge_some)

    async def read(self, statement: Executable, values: Mapping[str, Any]) -> Sequence[Any]:
        """A SELECT's rows, on the request's session."""
        return (await db_session().execute(statement, values)).all()

    def change(
        self,
        caller: Principal,
        task_id: int,
        changes: Mapping[str, Any],
        expected: VersionMatch | None,
    ) -> Change:
        fields = tuple(sorted(changes))
        check_version = _checks_version(expected)
        changed_at = utcnow()
        return Change(
            statement=statements.change(
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

    async def apply(self, work: UnitOfWork, change: Change) -> TaskRecord | None:
        """The change and, if it changed a value, its event, in `work`; None if it touched
        nothing (the task is gone, or not the caller's, or past the expected version)."""
        updated: TaskRecord | None = (
            await work.session.execute(change.statement, change.values)
        ).one_or_none()
        if updated is not None and updated.updated_at == change.changed_at:
            await records.record_change(work.session, "task.updated", updated)
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


def uses_fast_path(config: Mapping[str, Any]) -> bool:
    """Whether tasks go through `FastTaskStore`: on PostgreSQL, unless `DB_FAST_PATH` is off."""
    backend = make_url(config["DATABASE_URL"]).get_backend_name()
    return backend == "postgresql" and bool(config["DB_FAST_PATH"])

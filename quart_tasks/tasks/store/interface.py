"""What the routes, sync and the batch endpoint ask of a task store, and the values
they pass it.

Two stores implement `TaskStore`: `portable.PortableTaskStore`, through
SQLAlchemy's session on SQLite and PostgreSQL alike, and on PostgreSQL
`fast.FastTaskStore`, which runs what it can straight on asyncpg, in few statements.
Every statement is scoped to its caller (see `scope`). Writes that carry an
`If-Match` check the version in the UPDATE or DELETE itself, so of two clients
racing with the same ETag exactly one wins. Each write adds its event to the
log in its own transaction, and asks its unit of work to purge old events
once committed.

One capability only the fast store has: a batch of nothing but creates, with
their idempotency records, as one statement (`KeyedCreates`); the batch
endpoint asks for it by type.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, runtime_checkable

from sqlalchemy.sql import Executable

from quart_tasks.auth.caller import Principal
from quart_tasks.storage.ids import MAX_BIG_ID
from quart_tasks.storage.unit_of_work import UnitOfWork
from quart_tasks.tasks.models import TaskRecord
from quart_tasks.tasks.scope import list_scope, scope_values
from quart_tasks.tasks.sorting import SortOrder
from quart_tasks.tasks.store import statements
from quart_tasks.web.conditional import VersionMatch
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
            **scope_values(caller, self.owner),
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
class PreparedUpdate:
    """A change's statement and values, as `statements.change` binds them."""

    statement: Any
    values: dict[str, Any]
    changed_at: datetime
    checks_version: bool


class TaskStore(Protocol):
    """Tasks as the routes, sync and the batch endpoint read and write them."""

    async def list_rendered(
        self,
        caller: Principal,
        filters: TaskFilter,
        sort: SortOrder,
        page: PageRequest,
        count_limit: int,
    ) -> RenderedPage: ...

    async def list_page(
        self,
        caller: Principal,
        filters: TaskFilter,
        sort: SortOrder,
        page: PageRequest,
        count_limit: int,
        *,
        rendered: bool = False,
    ) -> tuple[Sequence[Any], Total]: ...

    async def list_after(
        self,
        caller: Principal,
        filters: TaskFilter,
        sort: SortOrder,
        key: list[Any] | None,
        page_size: int,
    ) -> tuple[Sequence[TaskRecord], bool]: ...

    async def log_bounds(self) -> tuple[int, int]: ...

    async def fetch(self, caller: Principal, task_id: int) -> TaskRecord: ...

    async def create(
        self, work: UnitOfWork, caller: Principal, *, title: str, done: bool
    ) -> TaskRecord: ...

    async def create_many(
        self, work: UnitOfWork, caller: Principal, given: Sequence[tuple[str, bool]]
    ) -> Sequence[TaskRecord]: ...

    async def update(
        self,
        work: UnitOfWork,
        caller: Principal,
        task_id: int,
        changes: Mapping[str, Any],
        expected: VersionMatch | None = None,
    ) -> TaskRecord: ...

    async def delete(
        self,
        work: UnitOfWork,
        caller: Principal,
        task_id: int,
        expected: VersionMatch | None = None,
    ) -> None: ...

    async def read(self, statement: Executable, values: Mapping[str, Any]) -> Sequence[Any]: ...

    def prepare_update(
        self,
        caller: Principal,
        task_id: int,
        changes: Mapping[str, Any],
        expected: VersionMatch | None,
    ) -> PreparedUpdate: ...

    async def apply_update(self, work: UnitOfWork, update: PreparedUpdate) -> TaskRecord | None: ...

    async def refusal(
        self, caller: Principal, task_id: int, *, checked_version: bool
    ) -> APIError: ...


@runtime_checkable
class KeyedCreates(Protocol):
    """A store that can write a batch of creates and their idempotency records as one
    statement, committed by itself."""

    def writes_creates_in_autocommit(self, work: UnitOfWork) -> bool:
        """Whether a batch of nothing but creates may go as `create_keyed_in_autocommit` now."""
        ...

    async def read_in_autocommit(
        self, statement: Executable, values: Mapping[str, Any]
    ) -> Sequence[Any]:
        """A SELECT's rows outside any unit of work (where `writes_creates_in_autocommit`)."""
        ...

    async def create_keyed_in_autocommit(
        self,
        work: UnitOfWork,
        caller: Principal,
        given: Sequence[KeyedCreate],
        expires_at: datetime,
    ) -> Sequence[Any]:
        """New tasks, their events and their idempotency records as one statement,
        committed by itself; each row with `json` (see
        `writes.keyed_creations_with_events`). `KeyTaken` if a key was recorded meanwhile."""
        ...

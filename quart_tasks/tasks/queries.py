"""Every statement the tasks routes run, each scoped to its caller (see `scope`)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, UnaryExpression, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..database import utcnow
from ..errors import APIError, not_found
from ..ids import MAX_BIG_ID
from ..pagination import PageRequest
from ..security import Principal
from .models import Task
from .scope import listed_for, reachable_by

SORT_ORDERS: dict[str, tuple[UnaryExpression[Any], ...]] = {
    "id_desc": (Task.id.desc(),),
    "id_asc": (Task.id.asc(),),
    "created_desc": (Task.created_at.desc(), Task.id.desc()),
    "created_asc": (Task.created_at.asc(), Task.id.asc()),
    "updated_desc": (Task.updated_at.desc(), Task.id.desc()),
    "title_asc": (Task.title.asc(), Task.id.asc()),
}


def task_not_found() -> APIError:
    return not_found("Task not found")


@dataclass(frozen=True, slots=True)
class TaskFilter:
    done: bool | None = None
    title_contains: str | None = None
    owner: str | None = None

    def conditions(self, caller: Principal) -> list[ColumnElement[bool]]:
        conditions = listed_for(caller, self.owner)
        if self.done is not None:
            conditions.append(Task.done.is_(self.done))
        if self.title_contains:
            conditions.append(Task.title.icontains(self.title_contains, autoescape=True))
        return conditions


async def list_tasks(
    session: AsyncSession, caller: Principal, filters: TaskFilter, sort: str, page: PageRequest
) -> tuple[Sequence[Task], int]:
    """One page of the tasks that match, and how many match in all."""
    conditions = filters.conditions(caller)
    total = await session.scalar(select(func.count()).select_from(Task).where(*conditions))
    tasks = await session.scalars(
        select(Task)
        .where(*conditions)
        .order_by(*SORT_ORDERS[sort])
        .limit(page.page_size)
        .offset(page.offset)
    )
    return tasks.all(), total or 0


async def fetch_task(session: AsyncSession, caller: Principal, task_id: int) -> Task:
    if task_id > MAX_BIG_ID:  # cannot exist, and must not reach the driver
        raise task_not_found()
    task = await session.scalar(select(Task).where(Task.id == task_id, *reachable_by(caller)))
    if task is None:
        raise task_not_found()
    return task


async def create_task(session: AsyncSession, caller: Principal, *, title: str, done: bool) -> Task:
    now = utcnow()
    task = Task(owner_id=caller.user_id, title=title, done=done, created_at=now, updated_at=now)
    session.add(task)
    await session.commit()
    return task


async def update_task(
    session: AsyncSession, caller: Principal, task_id: int, changes: Mapping[str, Any]
) -> Task:
    """Apply `changes`; `updated_at` moves only when a value actually changes."""
    task = await fetch_task(session, caller, task_id)
    for field, value in changes.items():
        setattr(task, field, value)
    await session.commit()
    return task


async def delete_task(session: AsyncSession, caller: Principal, task_id: int) -> None:
    if task_id > MAX_BIG_ID:
        raise task_not_found()
    result = await session.execute(delete(Task).where(Task.id == task_id, *reachable_by(caller)))
    await session.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise task_not_found()

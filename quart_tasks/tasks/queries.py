"""Every statement the tasks routes run."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, UnaryExpression, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from ..database import utcnow
from ..errors import APIError, not_found
from ..pagination import PageRequest
from .models import Task

SORT_ORDERS: dict[str, tuple[UnaryExpression[Any], ...]] = {
    "id_desc": (Task.id.desc(),),
    "id_asc": (Task.id.asc(),),
    "created_desc": (Task.created_at.desc(), Task.id.desc()),
    "created_asc": (Task.created_at.asc(), Task.id.asc()),
    "updated_desc": (Task.updated_at.desc(), Task.id.desc()),
    "title_asc": (Task.title.asc(), Task.id.asc()),
}


MAX_TASK_ID = 2**63 - 1  # BIGINT: a larger id cannot exist, and must not reach the driver


def task_not_found() -> APIError:
    return not_found("Task not found")


@dataclass(frozen=True, slots=True)
class TaskFilter:
    done: bool | None = None
    title_contains: str | None = None

    def conditions(self) -> list[ColumnElement[bool]]:
        conditions: list[ColumnElement[bool]] = []
        if self.done is not None:
            conditions.append(Task.done.is_(self.done))
        if self.title_contains:
            conditions.append(Task.title.icontains(self.title_contains, autoescape=True))
        return conditions


async def list_tasks(
    session: AsyncSession, filters: TaskFilter, sort: str, page: PageRequest
) -> tuple[Sequence[Task], int]:
    """One page of the tasks that match, and how many match in all."""
    conditions = filters.conditions()
    total = await session.scalar(select(func.count()).select_from(Task).where(*conditions))
    tasks = await session.scalars(
        select(Task)
        .where(*conditions)
        .order_by(*SORT_ORDERS[sort])
        .limit(page.page_size)
        .offset(page.offset)
    )
    return tasks.all(), total or 0


async def fetch_task(session: AsyncSession, task_id: int) -> Task:
    task = await session.get(Task, task_id) if task_id <= MAX_TASK_ID else None
    if task is None:
        raise task_not_found()
    return task


async def create_task(session: AsyncSession, *, title: str, done: bool) -> Task:
    now = utcnow()
    task = Task(title=title, done=done, created_at=now, updated_at=now)
    session.add(task)
    await session.commit()
    return task


async def update_task(session: AsyncSession, task_id: int, changes: Mapping[str, Any]) -> Task:
    """Apply `changes`; `updated_at` moves only when a value actually changes."""
    task = await fetch_task(session, task_id)
    for field, value in changes.items():
        setattr(task, field, value)
    await session.commit()
    return task


async def delete_task(session: AsyncSession, task_id: int) -> None:
    if task_id > MAX_TASK_ID:
        raise task_not_found()
    result = await session.execute(delete(Task).where(Task.id == task_id))
    await session.commit()
    if result.rowcount == 0:  # type: ignore[attr-defined]
        raise task_not_found()

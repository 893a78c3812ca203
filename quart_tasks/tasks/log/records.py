"""An event written by the ORM's unit of work, in the transaction of its change.

The portable store's writes (and the fast store's inside a unit of work)
record their events here; the fast store's single statements write theirs
themselves (`store.writes`).
"""

from __future__ import annotations

import typing
from functools import cache
from typing import Any, Literal

from sqlalchemy import Insert, Select, Table, bindparam, insert

from quart_tasks.storage.base import utcnow
from quart_tasks.storage.unit_of_work import UnitOfWork
from quart_tasks.tasks.log.models import TaskEvent
from quart_tasks.tasks.log.signals import announce_committed
from quart_tasks.tasks.models import TaskRecord
from quart_tasks.tasks.schemas import TaskOut

EventType = Literal["task.created", "task.updated", "task.deleted"]

EVENTS = typing.cast(Table, TaskEvent.__table__)
EVENT_COLUMNS = ("type", "task_id", "owner_id", "payload", "created_at")


async def record_change(work: UnitOfWork, event_type: EventType, task: TaskRecord) -> None:
    await _record(work, event_type, task.id, task.owner_id, TaskOut.model_validate(task))


async def record_deletion(work: UnitOfWork, task_id: int, owner_id: int) -> None:
    await _record(work, "task.deleted", task_id, owner_id, None)


async def _record(
    work: UnitOfWork,
    event_type: EventType,
    task_id: int,
    owner_id: int,
    task: TaskOut | None,
) -> None:
    values = {
        "type": event_type,
        "task_id": task_id,
        "owner_id": owner_id,
        "payload": task.model_dump_json() if task is not None else f'{{"id":{task_id}}}',
        "created_at": utcnow(),
    }
    await work.session.execute(_insert_event(), values)
    work.on_commit(announce_committed)


@cache
def _insert_event() -> Insert:
    values = [bindparam(name, type_=EVENTS.c[name].type) for name in EVENT_COLUMNS]
    return insert(EVENTS).values(dict(zip(EVENT_COLUMNS, values, strict=True)))


def insert_rows(rows: Select[Any]) -> Insert:
    """Insert `rows` (EVENT_COLUMNS) as events."""
    return insert(EVENTS).from_select(list(EVENT_COLUMNS), rows)

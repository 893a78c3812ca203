"""Reading the event log: events past a position, and the positions it keeps.

Streams and syncs read here. On PostgreSQL positions are given by rounds
(`rounds`); on SQLite an event's position is its id.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cache
from typing import Any

from sqlalchemy import BigInteger, String, Text, TextualSelect, column, func, select, text
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from quart_tasks.storage.dialects import is_postgresql
from quart_tasks.tasks.log.models import TaskEvent, TaskEventRound


@dataclass(frozen=True, slots=True)
class LoggedEvent:
    position: int
    type: str
    task_id: int
    owner_id: int
    payload: str


@dataclass(frozen=True, slots=True)
class LogPage:
    """Events past a position, oldest first, and how far the log was read for them."""

    events: Sequence[LoggedEvent]
    reached: int
    """Every event up to this position that the reader may see is in `events`."""
    complete: bool
    """Nothing past `reached` was in the log when it was read."""


OWNER_WINDOW = 8
"""An owner's read looks through this many times its limit of everyone's positions."""

_POSITIONED = """
    SELECT r.first_position + o.n - 1 AS position,
           e.type, e.task_id, e.owner_id, e.payload
    FROM (
        SELECT first_position, event_ids FROM task_event_rounds
        WHERE last_position > :after ORDER BY last_position LIMIT :window
    ) AS r
    CROSS JOIN LATERAL unnest(r.event_ids) WITH ORDINALITY AS o(event_id, n)
    JOIN task_events e ON e.id = o.event_id
    WHERE r.first_position + o.n - 1 > :after AND r.first_position + o.n - 1 <= :upto
    {owner}
    ORDER BY position
"""


@cache
def _positioned(*, one_owner: bool) -> TextualSelect:
    owner = "AND e.owner_id = :owner_id" if one_owner else ""
    return text(_POSITIONED.format(owner=owner)).columns(
        column("position", BigInteger),
        column("type", String),
        column("task_id", BigInteger),
        column("owner_id", BigInteger),
        column("payload", Text),
    )


async def read_after(
    session: AsyncSession, after: int, *, owner_id: int | None, limit: int
) -> LogPage:
    """Events past position `after`, oldest first, at most `limit`; `owner_id` None means
    everyone's."""
    if not is_postgresql(session):
        return await _read_ids_after(session, after, owner_id=owner_id, limit=limit)
    newest = await session.scalar(select(func.max(TaskEventRound.last_position))) or 0
    window = limit if owner_id is None else limit * OWNER_WINDOW
    upto = min(after + window, newest)
    if upto <= after:
        return LogPage([], after, complete=True)
    values: Mapping[str, Any] = {
        "after": after,
        "upto": upto,
        "window": window,
        "owner_id": owner_id,
    }
    rows = await session.execute(_positioned(one_owner=owner_id is not None), values)
    found = [LoggedEvent(r.position, r.type, r.task_id, r.owner_id, r.payload) for r in rows]
    return LogPage(found, upto, complete=upto == newest)


async def _read_ids_after(
    session: AsyncSession, after: int, *, owner_id: int | None, limit: int
) -> LogPage:
    statement = select(TaskEvent).where(TaskEvent.id > after)
    if owner_id is not None:
        statement = statement.where(TaskEvent.owner_id == owner_id)
    rows = await session.scalars(statement.order_by(TaskEvent.id).limit(limit))
    found = [LoggedEvent(r.id, r.type, r.task_id, r.owner_id, r.payload) for r in rows]
    reached = found[-1].position if found else after
    return LogPage(found, reached, complete=len(found) < limit)


async def bounds(session: AsyncSession) -> tuple[int, int]:
    """The oldest and newest positions kept (0, 0 before the first event).

    A reader may resume after any position from oldest - 1 to newest."""
    return bounds_from(
        (await session.execute(bounds_query(postgresql=is_postgresql(session)))).one()
    )


def bounds_from(row: Any) -> tuple[int, int]:
    """`bounds_query`'s row (oldest, newest; NULLs before the first event) as positions."""
    return (row.oldest or 0, row.newest or 0) if row is not None else (0, 0)


@cache
def bounds_query(*, postgresql: bool) -> Executable:
    """`bounds` as one statement, for readers that run it their own way; NULLs for 0."""
    if not postgresql:
        return select(
            func.min(TaskEvent.id).label("oldest"), func.max(TaskEvent.id).label("newest")
        )
    oldest_round = (
        select(TaskEventRound.first_position)
        .order_by(TaskEventRound.last_position)
        .limit(1)
        .scalar_subquery()
    )
    newest_round = select(func.max(TaskEventRound.last_position)).scalar_subquery()
    return select(oldest_round.label("oldest"), newest_round.label("newest"))

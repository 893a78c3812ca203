"""The event log's read half: what a stream sends, from the log `tasks.events` writes."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.tasks.models import TaskEvent


@dataclass(frozen=True, slots=True)
class Event:
    """A logged event, framed once for every subscriber that receives it."""

    id: int
    type: str
    owner_id: int
    payload: str
    sse: bytes
    ws: str

    @classmethod
    def of(cls, row: TaskEvent) -> Event:
        return cls(
            id=row.id,
            type=row.type,
            owner_id=row.owner_id,
            payload=row.payload,
            sse=f"id: {row.id}\nevent: {row.type}\ndata: {row.payload}\n\n".encode(),
            ws=f'{{"id":{row.id},"event":"{row.type}","data":{row.payload}}}',
        )


async def read_after(
    session: AsyncSession, after_id: int, *, owner_id: int | None, limit: int
) -> Sequence[Event]:
    """Up to `limit` events past `after_id`, oldest first; `owner_id` None means everyone's."""
    statement = select(TaskEvent).where(TaskEvent.id > after_id)
    if owner_id is not None:
        statement = statement.where(TaskEvent.owner_id == owner_id)
    rows = await session.scalars(statement.order_by(TaskEvent.id).limit(limit))
    return [Event.of(row) for row in rows]


async def bounds(session: AsyncSession) -> tuple[int, int]:
    """The oldest and newest event ids kept (0, 0 for an empty log)."""
    oldest, newest = (
        await session.execute(select(func.min(TaskEvent.id), func.max(TaskEvent.id)))
    ).one()
    return oldest or 0, newest or 0

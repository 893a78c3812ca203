"""Dropping events past the retention age or count; the newest always stay."""

from __future__ import annotations

import random
from datetime import timedelta
from typing import Any

from quart import current_app
from sqlalchemy import delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.storage.base import utcnow
from quart_tasks.storage.dialects import is_postgresql
from quart_tasks.tasks.log.models import TaskEvent, TaskEventRound

PURGE_ROUNDS = 100
"""Rounds dropped at most by one purge."""


async def purge_some(session: AsyncSession) -> None:
    """Now and then, drop events past the retention age or count; the newest always stay.

    A write's housekeeping (`UnitOfWork.after_commit`): no separate daemon.
    """
    config = current_app.config
    every = config["EVENTS_PURGE_EVERY"]
    if every <= 0 or random.randrange(every) != 0:
        return
    cutoff = utcnow() - timedelta(seconds=config["EVENTS_RETENTION_SECONDS"])
    if is_postgresql(session):
        await _purge_rounds(session, config["EVENTS_RETENTION_COUNT"], cutoff)
    else:
        await _purge_ids(session, config["EVENTS_RETENTION_COUNT"], cutoff)


async def _purge_rounds(session: AsyncSession, keep: int, cutoff: Any) -> None:
    """Whole rounds, oldest first, and their events with them; never the newest round."""
    newest = await session.scalar(select(func.max(TaskEventRound.last_position)))
    if newest is None:
        return
    expired = (
        select(TaskEventRound.id)
        .where(
            TaskEventRound.last_position < newest,
            (TaskEventRound.last_position <= newest - keep) | (TaskEventRound.created_at < cutoff),
        )
        .order_by(TaskEventRound.last_position)
        .limit(PURGE_ROUNDS)
    )
    ids = list(await session.scalars(expired))
    if not ids:
        return
    event_ids = select(func.unnest(TaskEventRound.event_ids)).where(TaskEventRound.id.in_(ids))
    await session.execute(delete(TaskEvent).where(TaskEvent.id.in_(event_ids)))
    await session.execute(delete(TaskEventRound).where(TaskEventRound.id.in_(ids)))


async def _purge_ids(session: AsyncSession, keep: int, cutoff: Any) -> None:
    newest = await session.scalar(select(func.max(TaskEvent.id))) or 0
    oldest = (
        await session.execute(
            select(TaskEvent.id, TaskEvent.created_at).order_by(TaskEvent.id).limit(1)
        )
    ).first()
    past_count = newest - keep
    if oldest is None or oldest.id >= newest:
        return
    if oldest.id > past_count and oldest.created_at >= cutoff:
        return  # the oldest is kept, so is everything after it
    expired = (
        select(TaskEvent.id)
        .where(
            TaskEvent.id < newest, (TaskEvent.id <= past_count) | (TaskEvent.created_at < cutoff)
        )
        .order_by(TaskEvent.id)
        .limit(1000)
    )
    await session.execute(delete(TaskEvent).where(TaskEvent.id.in_(expired)))

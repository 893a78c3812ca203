"""Positions in the event log: the order in which streams and syncs read events.

A reader that has seen position P must never later meet an event below P.
Event ids cannot promise that on PostgreSQL, where writers draw ids at once
and commit in any order: a transaction that drew id 10 may commit after one
that drew 11, and a reader that saw 11 would skip 10. Rather than make every
writer wait on one lock until it commits, events get their positions after
they commit, in rounds:

- an event records its transaction's id (`xid`, filled by the column's default);
- a round takes a snapshot and holds each event whose transaction is visible
  in it but was not visible in the previous round's: exactly the events
  committed between the two, ordered by event id, one position each;
- rounds are taken one at a time, under an advisory lock that only rounds
  take, so positions grow in the order the rounds commit.

Ordering a round by event id keeps every conflict in commit order: a writer
draws its event's id after it holds the task's row, so after any change of
that task committed before it. A transaction still running, however long,
holds nothing up: its events go in the round after it commits. Why this and
not transaction-id order or logical decoding: docs/architecture.md.

SQLite lets one writer in at a time, so ids grow in commit order there and
an event's position is its id.
"""

from __future__ import annotations

import random
import typing
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from quart import current_app
from sqlalchemy import (
    DDL,
    BigInteger,
    String,
    Table,
    Text,
    TextualSelect,
    column,
    delete,
    event,
    func,
    select,
    text,
)
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql import Executable

from quart_tasks.storage.base import utcnow
from quart_tasks.storage.sessions import is_postgresql
from quart_tasks.tasks.models import TaskEvent, TaskEventRound

CHANNEL = "task_events"
"""Notified by each round that positions events, with its last position."""
ROUND_LOCK_KEY = 0x74617372  # any constant, the same in every process
EMPTY_SNAPSHOT = "1:1:"
"""Before the first round: every transaction id is past it, so every event is new."""
PURGE_ROUNDS = 100
"""Rounds dropped at most by one purge."""

ROUND_FUNCTION = f"""
CREATE OR REPLACE FUNCTION task_events_round() RETURNS integer
LANGUAGE plpgsql
-- The round's lower bound comes from the previous round's snapshot, so the
-- planner cannot see how few events lie past it: on a large log it might
-- otherwise read the whole table.
SET enable_seqscan = off
AS $$
DECLARE
    positioned integer;
    last bigint;
BEGIN
    PERFORM pg_advisory_xact_lock({ROUND_LOCK_KEY});
    -- A statement of its own, so its snapshot is taken once the lock is held: the
    -- previous round has committed, and is the one read here. The events committed
    -- since are the transactions past its xmax, and those it saw running.
    WITH previous AS (
        SELECT snapshot::pg_snapshot AS snapshot, last_position
        FROM task_event_rounds ORDER BY last_position DESC LIMIT 1
    ), since AS (
        SELECT
            coalesce((SELECT snapshot FROM previous), '{EMPTY_SNAPSHOT}'::pg_snapshot) AS snapshot,
            coalesce((SELECT last_position FROM previous), 0) AS last_position
    ), new AS (
        SELECT e.id FROM task_events e
        WHERE e.xid >= (SELECT pg_snapshot_xmax(snapshot)::text::bigint FROM since)
        UNION ALL
        SELECT e.id FROM task_events e
        WHERE e.xid = ANY (ARRAY(SELECT pg_snapshot_xip(snapshot)::text::bigint FROM since))
    )
    INSERT INTO task_event_rounds
        (snapshot, first_position, last_position, event_ids, created_at)
    SELECT pg_current_snapshot()::text, since.last_position + 1,
           since.last_position + count(new.id), array_agg(new.id ORDER BY new.id), now()
    FROM new CROSS JOIN since
    GROUP BY since.last_position
    RETURNING last_position - first_position + 1, last_position INTO positioned, last;
    IF positioned IS NULL THEN
        RETURN 0;
    END IF;
    PERFORM pg_notify('{CHANNEL}', last::text);
    RETURN positioned;
END
$$
"""
"""A round, in one call: its lock must be held before its statement's snapshot is taken,
which a single statement cannot do. The migration that made it keeps its own copy."""

_set_up_rounds = DDL(ROUND_FUNCTION)  # type: ignore[no-untyped-call]
event.listen(
    typing.cast(Table, TaskEventRound.__table__),
    "after_create",
    _set_up_rounds.execute_if(dialect="postgresql"),
)

ROUND = select(func.task_events_round().label("positioned"))


async def take_round(session: AsyncSession) -> int:
    """On PostgreSQL, give every event committed since the last round its position, and
    notify `CHANNEL`; how many got one. Runs and commits its own transaction."""
    async with session.begin():
        positioned: int = await session.scalar(ROUND) or 0
    return positioned


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
    first, last = (await session.execute(bounds_query(postgresql=is_postgresql(session)))).one()
    return first or 0, last or 0


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

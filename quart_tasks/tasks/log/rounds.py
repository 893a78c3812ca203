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

import typing

from sqlalchemy import DDL, Table, event, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.tasks.log.models import TaskEventRound

CHANNEL = "task_events"
"""Notified by each round that positions events, with its last position."""
ROUND_LOCK_KEY = 0x74617372  # any constant, the same in every process
EMPTY_SNAPSHOT = "1:1:"
"""Before the first round: every transaction id is past it, so every event is new."""

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

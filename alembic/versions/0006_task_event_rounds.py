"""task event rounds: events get their positions after they commit, not under a lock

Every event records its transaction's id (`xid`, PostgreSQL only), and
`task_event_rounds` gives positions to the events committed between two
snapshots, one round at a time (`task_events_round()`; see
`quart_tasks.tasks.log.rounds`).

On PostgreSQL, the events logged before this revision were ordered by id
under a lock that writers no longer take; they are dropped, and the log
starts past the newest of their ids. A client resuming after one of them
gets `reset` and reloads, as after any purge. Stop every instance of the
previous version before upgrading: its writers take the lock and read ids.
SQLite keeps its events: there an event's position is still its id.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06 10:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY

from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
XID_DEFAULT = "pg_current_xact_id()::text::bigint"
# This revision's copy of `quart_tasks.tasks.log.rounds.ROUND_FUNCTION`.
ROUND_FUNCTION = """
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
    PERFORM pg_advisory_xact_lock(1952543602);
    -- A statement of its own, so its snapshot is taken once the lock is held: the
    -- previous round has committed, and is the one read here. The events committed
    -- since are the transactions past its xmax, and those it saw running.
    WITH previous AS (
        SELECT snapshot::pg_snapshot AS snapshot, last_position
        FROM task_event_rounds ORDER BY last_position DESC LIMIT 1
    ), since AS (
        SELECT
            coalesce((SELECT snapshot FROM previous), '1:1:'::pg_snapshot) AS snapshot,
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
    PERFORM pg_notify('task_events', last::text);
    RETURN positioned;
END
$$
"""


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    op.add_column("task_events", sa.Column("xid", sa.BigInteger(), nullable=True))
    op.create_index("ix_task_events_xid", "task_events", ["xid"])
    op.create_table(
        "task_event_rounds",
        sa.Column("id", BigId, nullable=False),
        sa.Column("snapshot", sa.Text(), nullable=False),
        sa.Column("first_position", sa.BigInteger(), nullable=False),
        sa.Column("last_position", sa.BigInteger(), nullable=False),
        sa.Column(
            "event_ids", ARRAY(sa.BigInteger()).with_variant(sa.JSON(), "sqlite"), nullable=False
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_event_rounds")),
    )
    op.create_index(
        "ix_task_event_rounds_last_position", "task_event_rounds", ["last_position"], unique=True
    )
    if postgresql:
        op.execute(f"ALTER TABLE task_events ALTER COLUMN xid SET DEFAULT ({XID_DEFAULT})")
        op.execute(ROUND_FUNCTION)
        # An empty round whose positions start two past the newest old id: a client
        # resuming after any old id is then older than the log, and gets `reset`.
        op.execute(
            """
            INSERT INTO task_event_rounds
                (snapshot, first_position, last_position, event_ids, created_at)
            SELECT pg_current_snapshot()::text, max(id) + 2, max(id) + 1, '{}', now()
            FROM task_events HAVING count(*) > 0
            """
        )
        op.execute("DELETE FROM task_events")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("DROP FUNCTION task_events_round()")
    op.drop_index("ix_task_event_rounds_last_position", table_name="task_event_rounds")
    op.drop_table("task_event_rounds")
    op.drop_index("ix_task_events_xid", table_name="task_events")
    op.drop_column("task_events", "xid")

"""task event rounds: events get their positions after they commit, not under a lock

Every event records its transaction's id (`xid`, PostgreSQL only), and
`task_event_rounds` gives positions to the events committed between two
snapshots (see `quart_tasks.tasks.event_log`).

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
    op.drop_index("ix_task_event_rounds_last_position", table_name="task_event_rounds")
    op.drop_table("task_event_rounds")
    op.drop_index("ix_task_events_xid", table_name="task_events")
    op.drop_column("task_events", "xid")

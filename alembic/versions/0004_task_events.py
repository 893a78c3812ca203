"""task events: the log of committed task changes that live streams read

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-24 09:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "task_events",
        sa.Column("id", BigId, nullable=False),
        sa.Column("type", sa.String(length=16), nullable=False),
        sa.Column("task_id", sa.BigInteger(), nullable=False),
        sa.Column("owner_id", sa.BigInteger(), nullable=False),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_task_events")),
        sqlite_autoincrement=True,
    )
    op.create_index("ix_task_events_owner_id_id", "task_events", ["owner_id", "id"])


def downgrade() -> None:
    op.drop_index("ix_task_events_owner_id_id", table_name="task_events")
    op.drop_table("task_events")

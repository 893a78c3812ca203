"""task counts: each owner's number of tasks, kept by triggers on tasks

A list's total reads these instead of counting the owner's tasks. The
triggers are made before the existing tasks are counted: making them locks
`tasks` against writes until this migration commits, so no task is missed or
counted twice.

The trigger statements are this revision's copy of those in
`quart_tasks.tasks.counts` (which `metadata.create_all` uses): a migration
must keep doing what it did when the module changes.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-24 18:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SLOTS = 16

POSTGRESQL = [
    f"""
    CREATE OR REPLACE FUNCTION task_counts_follow_rows() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO task_counts (owner_id, slot, total)
            SELECT owner_id, mod(pg_backend_pid(), {SLOTS}), count(*)
            FROM added GROUP BY owner_id ORDER BY owner_id
            ON CONFLICT (owner_id, slot)
            DO UPDATE SET total = task_counts.total + excluded.total;
        ELSE
            INSERT INTO task_counts (owner_id, slot, total)
            SELECT owner_id, mod(pg_backend_pid(), {SLOTS}), -count(*)
            FROM removed JOIN users ON users.id = removed.owner_id
            GROUP BY owner_id ORDER BY owner_id
            ON CONFLICT (owner_id, slot)
            DO UPDATE SET total = task_counts.total + excluded.total;
        END IF;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE OR REPLACE FUNCTION task_counts_follow_owner() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO task_counts (owner_id, slot, total)
        SELECT moved.owner_id, mod(pg_backend_pid(), {SLOTS}), moved.change
        FROM (VALUES (OLD.owner_id, -1), (NEW.owner_id, 1)) AS moved (owner_id, change)
        JOIN users ON users.id = moved.owner_id
        ORDER BY moved.owner_id
        ON CONFLICT (owner_id, slot)
        DO UPDATE SET total = task_counts.total + excluded.total;
        RETURN NULL;
    END $$
    """,
    """
    CREATE TRIGGER task_counts_added AFTER INSERT ON tasks
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_follow_rows()
    """,
    """
    CREATE TRIGGER task_counts_removed AFTER DELETE ON tasks
    REFERENCING OLD TABLE AS removed
    FOR EACH STATEMENT EXECUTE FUNCTION task_counts_follow_rows()
    """,
    """
    CREATE TRIGGER task_counts_moved AFTER UPDATE OF owner_id ON tasks
    FOR EACH ROW WHEN (OLD.owner_id IS DISTINCT FROM NEW.owner_id)
    EXECUTE FUNCTION task_counts_follow_owner()
    """,
]

SQLITE = [
    """
    CREATE TRIGGER task_counts_added AFTER INSERT ON tasks BEGIN
        INSERT INTO task_counts (owner_id, slot, total) VALUES (NEW.owner_id, 0, 1)
        ON CONFLICT (owner_id, slot) DO UPDATE SET total = total + 1;
    END
    """,
    """
    CREATE TRIGGER task_counts_removed AFTER DELETE ON tasks BEGIN
        UPDATE task_counts SET total = total - 1 WHERE owner_id = OLD.owner_id AND slot = 0;
    END
    """,
    """
    CREATE TRIGGER task_counts_moved AFTER UPDATE OF owner_id ON tasks
    WHEN OLD.owner_id IS NOT NEW.owner_id BEGIN
        UPDATE task_counts SET total = total - 1 WHERE owner_id = OLD.owner_id AND slot = 0;
        INSERT INTO task_counts (owner_id, slot, total) VALUES (NEW.owner_id, 0, 1)
        ON CONFLICT (owner_id, slot) DO UPDATE SET total = total + 1;
    END
    """,
]

TRIGGERS = ["task_counts_added", "task_counts_removed", "task_counts_moved"]
FUNCTIONS = ["task_counts_follow_rows", "task_counts_follow_owner"]


def upgrade() -> None:
    op.create_table(
        "task_counts",
        sa.Column("owner_id", BigId, nullable=False),
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"],
            name=op.f("fk_task_counts_owner_id_users"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("owner_id", "slot", name=op.f("pk_task_counts")),
    )
    postgresql = op.get_bind().dialect.name == "postgresql"
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)
    op.execute(
        "INSERT INTO task_counts (owner_id, slot, total) "
        "SELECT owner_id, 0, count(*) FROM tasks GROUP BY owner_id"
    )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON tasks" if postgresql else f"DROP TRIGGER {trigger}")
    if postgresql:
        for function in FUNCTIONS:
            op.execute(f"DROP FUNCTION {function}()")
    op.drop_table("task_counts")

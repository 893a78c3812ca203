"""list indexes by done state, title search, counts by done state

Each list order gets an index with `done` after the owner, replacing the
per-owner indexes of 0003.
On PostgreSQL titles get a trigram index (extensions pg_trgm and btree_gin,
both trusted: the database's owner may create them). Task counts are kept per
owner and `done` state; the triggers are made before the tasks are counted, as
in 0005, so no task is missed or counted twice.

Building the indexes reads the whole table and holds writes to `tasks` until
this migration commits: about 30 s for 2,000,000 tasks on a 2-core machine.

The trigger statements are this revision's copy of those in
`quart_tasks.tasks.counts`.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-07 13:00:00
"""

import importlib.util
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType

import sqlalchemy as sa

from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BigId = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
SLOTS = 16
SORT_COLUMNS = (("id",), ("created_at", "id"), ("updated_at", "id"), ("title", "id"))
OLD_INDEXES = {
    "ix_tasks_owner_id_id": ["owner_id", "id"],
    "ix_tasks_owner_id_created_at_id": ["owner_id", "created_at", "id"],
    "ix_tasks_owner_id_updated_at_id": ["owner_id", "updated_at", "id"],
    "ix_tasks_owner_id_title_id": ["owner_id", "title", "id"],
}
EXTENSIONS = ("pg_trgm", "btree_gin")
TRIGRAMS = "ix_tasks_owner_id_title_trigrams"

POSTGRESQL = [
    f"""
    CREATE OR REPLACE FUNCTION task_counts_follow_rows() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        IF TG_OP = 'INSERT' THEN
            INSERT INTO task_counts (owner_id, done, slot, total)
            SELECT owner_id, done, mod(pg_backend_pid(), {SLOTS}), count(*)
            FROM added GROUP BY owner_id, done ORDER BY owner_id, done
            ON CONFLICT (owner_id, done, slot)
            DO UPDATE SET total = task_counts.total + excluded.total;
        ELSE
            INSERT INTO task_counts (owner_id, done, slot, total)
            SELECT owner_id, done, mod(pg_backend_pid(), {SLOTS}), -count(*)
            FROM removed JOIN users ON users.id = removed.owner_id
            GROUP BY owner_id, done ORDER BY owner_id, done
            ON CONFLICT (owner_id, done, slot)
            DO UPDATE SET total = task_counts.total + excluded.total;
        END IF;
        RETURN NULL;
    END $$
    """,
    f"""
    CREATE OR REPLACE FUNCTION task_counts_follow_row() RETURNS trigger
    LANGUAGE plpgsql AS $$
    BEGIN
        INSERT INTO task_counts (owner_id, done, slot, total)
        SELECT moved.owner_id, moved.done, mod(pg_backend_pid(), {SLOTS}), moved.change
        FROM (VALUES (OLD.owner_id, OLD.done, -1), (NEW.owner_id, NEW.done, 1))
            AS moved (owner_id, done, change)
        JOIN users ON users.id = moved.owner_id
        ORDER BY moved.owner_id, moved.done
        ON CONFLICT (owner_id, done, slot)
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
    CREATE TRIGGER task_counts_moved AFTER UPDATE OF owner_id, done ON tasks
    FOR EACH ROW WHEN (
        OLD.owner_id IS DISTINCT FROM NEW.owner_id OR OLD.done IS DISTINCT FROM NEW.done
    )
    EXECUTE FUNCTION task_counts_follow_row()
    """,
]

SQLITE = [
    """
    CREATE TRIGGER task_counts_added AFTER INSERT ON tasks BEGIN
        INSERT INTO task_counts (owner_id, done, slot, total) VALUES (NEW.owner_id, NEW.done, 0, 1)
        ON CONFLICT (owner_id, done, slot) DO UPDATE SET total = total + 1;
    END
    """,
    """
    CREATE TRIGGER task_counts_removed AFTER DELETE ON tasks BEGIN
        UPDATE task_counts SET total = total - 1
        WHERE owner_id = OLD.owner_id AND done = OLD.done AND slot = 0;
    END
    """,
    """
    CREATE TRIGGER task_counts_moved AFTER UPDATE OF owner_id, done ON tasks
    WHEN OLD.owner_id IS NOT NEW.owner_id OR OLD.done IS NOT NEW.done BEGIN
        UPDATE task_counts SET total = total - 1
        WHERE owner_id = OLD.owner_id AND done = OLD.done AND slot = 0;
        INSERT INTO task_counts (owner_id, done, slot, total) VALUES (NEW.owner_id, NEW.done, 0, 1)
        ON CONFLICT (owner_id, done, slot) DO UPDATE SET total = total + 1;
    END
    """,
]

TRIGGERS = ["task_counts_added", "task_counts_removed", "task_counts_moved"]


def _revision_0005() -> ModuleType:
    """0005, whose counts a downgrade makes again."""
    path = Path(__file__).with_name("0005_task_counts.py")
    spec = importlib.util.spec_from_file_location("revision_0005", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _list_indexes() -> dict[str, list[str]]:
    indexes = {}
    for columns in SORT_COLUMNS:
        key = ["owner_id", "done", *columns]
        indexes[f"ix_tasks_{'_'.join(key)}"] = key
    return indexes


def _drop_counts(postgresql: bool, functions: Sequence[str]) -> None:
    for trigger in TRIGGERS:
        op.execute(f"DROP TRIGGER {trigger} ON tasks" if postgresql else f"DROP TRIGGER {trigger}")
    if postgresql:
        for function in functions:
            op.execute(f"DROP FUNCTION {function}()")
    op.drop_table("task_counts")


def _create_counts(columns: list[sa.Column], key: list[str]) -> None:
    op.create_table(
        "task_counts",
        sa.Column("owner_id", BigId, nullable=False),
        *columns,
        sa.Column("slot", sa.SmallInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["owner_id"], ["users.id"],
            name=op.f("fk_task_counts_owner_id_users"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(*key, name=op.f("pk_task_counts")),
    )


def upgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    if postgresql:
        for extension in EXTENSIONS:
            op.execute(f"CREATE EXTENSION IF NOT EXISTS {extension}")
    for name in OLD_INDEXES:
        op.drop_index(name, table_name="tasks")
    for name, columns in _list_indexes().items():
        op.create_index(name, "tasks", columns)
    if postgresql:
        op.create_index(
            TRIGRAMS, "tasks", ["owner_id", "title"],
            postgresql_using="gin", postgresql_ops={"title": "gin_trgm_ops"},
        )

    _drop_counts(postgresql, ["task_counts_follow_rows", "task_counts_follow_owner"])
    _create_counts(
        [sa.Column("done", sa.Boolean(), nullable=False)], ["owner_id", "done", "slot"]
    )
    for statement in POSTGRESQL if postgresql else SQLITE:
        op.execute(statement)
    op.execute(
        "INSERT INTO task_counts (owner_id, done, slot, total) "
        "SELECT owner_id, done, 0, count(*) FROM tasks GROUP BY owner_id, done"
    )


def downgrade() -> None:
    postgresql = op.get_bind().dialect.name == "postgresql"
    _drop_counts(postgresql, ["task_counts_follow_rows", "task_counts_follow_row"])
    _create_counts([], ["owner_id", "slot"])
    previous = _revision_0005()
    for statement in previous.POSTGRESQL if postgresql else previous.SQLITE:
        op.execute(statement)
    op.execute(
        "INSERT INTO task_counts (owner_id, slot, total) "
        "SELECT owner_id, 0, count(*) FROM tasks GROUP BY owner_id"
    )

    if postgresql:
        op.drop_index(TRIGRAMS, table_name="tasks")
    for name in _list_indexes():
        op.drop_index(name, table_name="tasks")
    for name, columns in OLD_INDEXES.items():
        op.create_index(name, "tasks", columns)

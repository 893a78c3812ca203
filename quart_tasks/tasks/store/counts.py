"""How many tasks each owner has in each `done` state, kept by the database itself, so a
list's total is not a scan.

Counting an owner's tasks at every page costs time in proportion to how many
they have (half a millisecond of PostgreSQL's CPU at 10,000). Triggers on
`tasks` keep the count instead, in the transaction of each insert, delete or
change of owner, whoever makes it (the API, a migration, an operator's SQL),
so the sum is exactly as current as the rows any reader sees.

On PostgreSQL an owner's count is spread over `SLOTS` rows, the slot chosen
by the writing connection: a counter row stays locked until its transaction
commits, and a single row would make an owner's concurrent writes commit one
at a time. SQLite has one writer at a time, so it keeps one slot.

A list filtered on `done` sums that state's rows; an unfiltered one sums both.
Completing a task moves it from one state to the other, in the change's own
transaction (a row trigger, fired only when `done` or the owner changes).

A migration that rebuilds `tasks` (SQLite's batch mode) drops its triggers
with it and must create them again.

The triggers fire once per statement. A bulk load as thousands of one-row
INSERTs in a single transaction (an executemany) updates the same counter
row once per row, and on PostgreSQL each update walks that transaction's
earlier versions of the row: 20,000 rows took 2 s instead of 0.2, 50,000
took 11 s. Load in multi-row INSERTs, INSERT ... SELECT or COPY, or commit
every few thousand rows.
"""

from __future__ import annotations

from sqlalchemy import DDL, BigInteger, ForeignKey, SmallInteger, event
from sqlalchemy.orm import Mapped, mapped_column

from quart_tasks.storage.base import Base
from quart_tasks.storage.ids import BigId

SLOTS = 16


class TaskCount(Base):
    """Part of one owner's count of tasks in one `done` state; the count is the sum
    of its slots."""

    __tablename__ = "task_counts"

    owner_id: Mapped[int] = mapped_column(
        BigId, ForeignKey("users.id", ondelete="CASCADE"), primary_key=True
    )
    done: Mapped[bool] = mapped_column(primary_key=True)
    slot: Mapped[int] = mapped_column(SmallInteger, primary_key=True)
    total: Mapped[int] = mapped_column(BigInteger)


# Deleted tasks are only counted for owners that still exist: when a user is
# deleted, their tasks and their counts both go by cascade, in either order.
# Counter rows are written in key order, so two writers never wait on each other
# in opposite orders.
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


def _made_with_the_tables() -> None:
    """A schema made by `metadata.create_all` has the triggers too; migrations make their own."""
    for dialect, statements in (("postgresql", POSTGRESQL), ("sqlite", SQLITE)):
        for statement in statements:
            ddl = DDL(statement)  # type: ignore[no-untyped-call]
            event.listen(Base.metadata, "after_create", ddl.execute_if(dialect=dialect))


_made_with_the_tables()

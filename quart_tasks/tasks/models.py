"""The tasks table, its list and search indexes, and a task as the routes read it."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import DDL, ForeignKey, Index, String, desc, event
from sqlalchemy.orm import Mapped, mapped_column

from quart_tasks.storage.base import Base, utcnow
from quart_tasks.storage.ids import BigId

TITLE_MAX_LENGTH = 200


SORT_COLUMNS = (("id",), ("created_at", "id"), ("updated_at", "id"), ("title", "id"))
"""The columns of each list order (see `tasks.sorting`), ties broken by id."""


def _list_indexes() -> list[Index]:
    """An index for each list order of one owner's tasks and of all owners' tasks,
    by `done` first.

    A list reads one `done` state of an index at a time (both, merged, when it
    does not filter on `done`), so a filtered list reads only rows it returns
    and the id order is served by these indexes and never by the primary key:
    a walk of the primary key that skips other owners' rows is what the
    planner chose for an owner whose tasks are the oldest (see
    `tasks.store.statements`).

    The all-owners indexes hold `done` descending, the opposite way to the
    owners' indexes relative to the sort's columns; a statement orders `done`
    the way its own index does. With an owner's id fixed, an all-owners index
    would give an owner's list the same order, and for an owner whose tasks
    are the oldest the planner chose it and skipped every newer task of
    others; ordered this way it cannot, and the owners' indexes cannot serve
    an all-owners list either.
    """
    indexes = []
    for columns in SORT_COLUMNS:
        key = ("owner_id", "done", *columns)
        indexes.append(Index(f"ix_tasks_{'_'.join(key)}", *key))
    for columns in SORT_COLUMNS:
        indexes.append(Index(f"ix_tasks_done_desc_{'_'.join(columns)}", desc("done"), *columns))
    return indexes


LIST_INDEXES = _list_indexes()

TITLE_SEARCH_INDEX = Index(
    "ix_tasks_owner_id_title_trigrams",
    "owner_id",
    "title",
    postgresql_using="gin",
    postgresql_ops={"title": "gin_trgm_ops"},
).ddl_if(dialect="postgresql")
"""`q` on PostgreSQL: titles by trigram (pg_trgm), with the owner (btree_gin), so a
search of one owner's titles or of everyone's reads only the rows that hold the
fragment's trigrams. A fragment shorter than three characters has no trigram;
it is matched by reading the list's order (see `tasks.store.statements`)."""

SEARCH_EXTENSIONS = ("pg_trgm", "btree_gin")


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        *LIST_INDEXES,
        TITLE_SEARCH_INDEX,
        # A deleted task's id is never given to a new one, so a stale ETag or
        # link can never point at a different task.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    owner_id: Mapped[int] = mapped_column(BigId, ForeignKey("users.id", ondelete="CASCADE"))
    title: Mapped[str] = mapped_column(String(TITLE_MAX_LENGTH))
    done: Mapped[bool] = mapped_column(default=False)
    version: Mapped[int] = mapped_column(default=1, server_default="1")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, onupdate=utcnow)


for _extension in SEARCH_EXTENSIONS:
    event.listen(
        Base.metadata,
        "before_create",
        DDL(f"CREATE EXTENSION IF NOT EXISTS {_extension}").execute_if(  # type: ignore[no-untyped-call]
            dialect="postgresql"
        ),
    )


class TaskRecord(Protocol):
    """A task as the routes read it: a `Task`, or a row of its table's columns."""

    @property
    def id(self) -> int: ...
    @property
    def owner_id(self) -> int: ...
    @property
    def title(self) -> str: ...
    @property
    def done(self) -> bool: ...
    @property
    def version(self) -> int: ...
    @property
    def created_at(self) -> datetime: ...
    @property
    def updated_at(self) -> datetime: ...

"""The tasks table, and the log of their changes that streams and syncs resume from."""

from __future__ import annotations

import typing
from datetime import datetime
from typing import Protocol

from sqlalchemy import DDL, JSON, BigInteger, ForeignKey, Index, String, Table, Text, desc, event
from sqlalchemy.dialects.postgresql import ARRAY
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
    `tasks.statements`).

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
it is matched by reading the list's order (see `tasks.statements`)."""

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


class TaskEvent(Base):
    """One committed change to a task: the log that streams and syncs resume from.

    Written in the transaction of the change itself, so an event exists exactly
    when its change does. Where it stands in the log, its position, is given
    once it has committed (see `tasks.event_log`).
    """

    __tablename__ = "task_events"
    __table_args__ = (
        Index("ix_task_events_owner_id_id", "owner_id", "id"),
        Index("ix_task_events_xid", "xid"),
        # Ids are never reused, so a client's Last-Event-ID never names another event.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    task_id: Mapped[int] = mapped_column(BigInteger)
    owner_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    xid: Mapped[int | None] = mapped_column(BigInteger)
    """On PostgreSQL, the id of the transaction that wrote it (`XID_DEFAULT`)."""


XID_DEFAULT = "pg_current_xact_id()::text::bigint"
"""`task_events.xid`'s default on PostgreSQL; SQLite leaves it empty."""

for _extension in SEARCH_EXTENSIONS:
    event.listen(
        Base.metadata,
        "before_create",
        DDL(f"CREATE EXTENSION IF NOT EXISTS {_extension}").execute_if(  # type: ignore[no-untyped-call]
            dialect="postgresql"
        ),
    )

_set_xid_default = DDL(  # type: ignore[no-untyped-call]
    f"ALTER TABLE task_events ALTER COLUMN xid SET DEFAULT ({XID_DEFAULT})"
)
event.listen(
    typing.cast(Table, TaskEvent.__table__),
    "after_create",
    _set_xid_default.execute_if(dialect="postgresql"),
)


class TaskEventRound(Base):
    """On PostgreSQL, the events that became visible together, in the order they take.

    A round holds every event committed after the previous round's snapshot
    and before its own, ordered by id; their positions run from
    `first_position` to `last_position`, one each (see `tasks.event_log`).
    """

    __tablename__ = "task_event_rounds"
    __table_args__ = (Index("ix_task_event_rounds_last_position", "last_position", unique=True),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    snapshot: Mapped[str] = mapped_column(Text)
    """`pg_current_snapshot()` as text, when the round was taken."""
    first_position: Mapped[int] = mapped_column(BigInteger)
    last_position: Mapped[int] = mapped_column(BigInteger)
    event_ids: Mapped[list[int]] = mapped_column(ARRAY(BigInteger).with_variant(JSON(), "sqlite"))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


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

"""The tasks table, and the log of their changes that streams resume from."""

from __future__ import annotations

from datetime import datetime
from typing import Protocol

from sqlalchemy import BigInteger, ForeignKey, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from quart_tasks.storage.base import Base, utcnow
from quart_tasks.storage.ids import BigId

TITLE_MAX_LENGTH = 200


class Task(Base):
    __tablename__ = "tasks"
    __table_args__ = (
        # A list is one owner's tasks in one sort order, ties broken by id: each
        # order has an index that serves its first page, its deep keyset pages
        # and the `done` filter without a sort step.
        Index("ix_tasks_owner_id_id", "owner_id", "id"),
        Index("ix_tasks_owner_id_created_at_id", "owner_id", "created_at", "id"),
        Index("ix_tasks_owner_id_updated_at_id", "owner_id", "updated_at", "id"),
        Index("ix_tasks_owner_id_title_id", "owner_id", "title", "id"),
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
    """One committed change to a task: the log that streams resume from.

    Written in the transaction of the change itself, so an event exists exactly
    when its change does; ids grow in commit order (see `tasks.events`).
    """

    __tablename__ = "task_events"
    __table_args__ = (
        Index("ix_task_events_owner_id_id", "owner_id", "id"),
        # Ids are never reused, so a client's Last-Event-ID never names another event.
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type: Mapped[str] = mapped_column(String(16))
    task_id: Mapped[int] = mapped_column(BigInteger)
    owner_id: Mapped[int] = mapped_column(BigInteger)
    payload: Mapped[str] = mapped_column(Text)
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

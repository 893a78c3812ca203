"""The event log's tables: each committed change to a task, and on PostgreSQL the rounds
that give events their positions (see `tasks.log.rounds`)."""

from __future__ import annotations

import typing
from datetime import datetime

from sqlalchemy import DDL, JSON, BigInteger, Index, String, Table, Text, event
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.orm import Mapped, mapped_column

from quart_tasks.storage.base import Base, utcnow
from quart_tasks.storage.ids import BigId


class TaskEvent(Base):
    """One committed change to a task: the log that streams and syncs resume from.

    Written in the transaction of the change itself, so an event exists exactly
    when its change does. Where it stands in the log, its position, is given
    once it has committed (see `tasks.log.rounds`).
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
    `first_position` to `last_position`, one each (see `tasks.log.rounds`).
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

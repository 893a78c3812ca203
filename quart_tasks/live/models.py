from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, Index, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from ..database import Base, utcnow
from ..ids import BigId


class TaskEvent(Base):
    """One committed change to a task: the log that streams resume from.

    Written in the transaction of the change itself, so an event exists exactly
    when its change does; ids grow in commit order (see `log`).
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

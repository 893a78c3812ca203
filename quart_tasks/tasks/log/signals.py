"""Announcing committed events within this process, so its readers need not poll.

A writer takes no lock and sends no notification: either would make every
writer of the deployment commit one at a time (PostgreSQL serialises the
commits of transactions that NOTIFY). Events get their positions once they
have committed (`rounds`): this process's commits are announced by
`events_committed`, on which its `Sequencer` takes a round, and each round
announces what it positioned by `events_positioned` here and by NOTIFY to
the other processes.

A session's writes mark it (`note_written`) and are announced after its
commit; a statement run on the driver, outside any session, announces itself
(`announce_committed`).
"""

from __future__ import annotations

from blinker import Namespace
from quart import current_app, has_app_context
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

WRITTEN_FLAG = "task_events_written"
"""Set in `session.info` when a transaction wrote an event: the broker is woken after commit."""

_signals = Namespace()
events_committed = _signals.signal("task-events-committed")
"""Sent, with the app as sender, once this process has committed task events."""
events_positioned = _signals.signal("task-events-positioned")
"""Sent, with the app as sender, once this process's round has positioned events
(on SQLite, where an event's id is its position, with `events_committed`)."""


def announce_committed() -> None:
    """Events just committed reach this process's subscribers without waiting for a poll."""
    if has_app_context():
        events_committed.send(current_app._get_current_object())  # type: ignore[attr-defined]


def note_written(session: AsyncSession) -> None:
    """The transaction wrote an event: announce it once it commits."""
    session.info[WRITTEN_FLAG] = True


@sqlalchemy_event.listens_for(Session, "after_commit")
def _announce_after_commit(session: Session) -> None:
    if session.info.pop(WRITTEN_FLAG, False):
        announce_committed()


@sqlalchemy_event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, _previous: object) -> None:
    session.info.pop(WRITTEN_FLAG, None)

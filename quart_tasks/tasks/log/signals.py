"""Announcing committed events within this process, so its readers need not poll.

A writer takes no lock and sends no notification: either would make every
writer of the deployment commit one at a time (PostgreSQL serialises the
commits of transactions that NOTIFY). Events get their positions once they
have committed (`rounds`): this process's commits are announced by
`events_committed`, on which its `Sequencer` takes a round, and each round
announces what it positioned by `events_positioned` here and by NOTIFY to
the other processes.

Every write of an event announces it by `announce_committed`, once it is
durable: a unit of work's after its commit (`UnitOfWork.on_commit`), a
statement that commits alone on the driver right after it.
"""

from __future__ import annotations

from blinker import Namespace
from quart import current_app, has_app_context

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

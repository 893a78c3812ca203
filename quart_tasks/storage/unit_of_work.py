"""The unit of work: the one place a transaction begins and ends.

A route that writes opens one, hands it to the statements it runs, and leaves
it: a clean exit commits, an error rolls back, and nothing else commits or
rolls back. Housekeeping a write asks for (`after_commit`: purging old events,
keys and tokens) runs once the write has committed, each step in a short
transaction of its own, and never fails the request: the client's write has
happened, and a 503 would make it retry one that did. What must only be said
once the write is durable (`on_commit`: announcing new events) is said right
after the commit.

A write that is one statement, atomic by itself, may run straight on the
driver in autocommit instead (`claim_autocommit`): then the unit's own transaction must
stay empty, and leaving it checks that it did.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from types import TracebackType

from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.storage.sessions import db_session

logger = logging.getLogger(__name__)

Housekeeping = Callable[[AsyncSession], Awaitable[None]]
HOUSEKEEPING_FAULTS = (SQLAlchemyError, OSError, TimeoutError)


@dataclass(slots=True)
class UnitOfWork:
    """A transaction on `session`: `async with` it; a clean exit commits, an error rolls back.

    A class of its own rather than a generator-based context manager: every write
    request enters one, and this spares each a generator and its frames.
    """

    session: AsyncSession
    housekeeping: list[tuple[str, Housekeeping]] = field(default_factory=list)
    committed: list[Callable[[], None]] = field(default_factory=list)
    wrote_in_autocommit: bool = False

    def claim_autocommit(self) -> bool:
        """Whether a one-statement write may go straight to the driver, committed by itself:
        only while this unit has written nothing, and then it may write nothing more."""
        if self.session.in_transaction():
            return False
        self.wrote_in_autocommit = True
        return True

    def after_commit(self, what: str, step: Housekeeping) -> None:
        """Run `step` on the session once this unit has committed; `what` names it in a log.
        Asked again for the same `what` (a batch's writes), it runs once."""
        if all(what != asked for asked, _ in self.housekeeping):
            self.housekeeping.append((what, step))

    def on_commit(self, announce: Callable[[], None]) -> None:
        """Call `announce` once this unit has committed (once, however often asked)."""
        if announce not in self.committed:
            self.committed.append(announce)

    async def __aenter__(self) -> UnitOfWork:
        return self

    async def __aexit__(
        self,
        error_type: type[BaseException] | None,
        error: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        session = self.session
        if error is not None:
            # A cancelled request's session is closed, shielded, by its teardown
            # (`close_request_session`); any other error rolls back here.
            if not isinstance(error, asyncio.CancelledError) and session.in_transaction():
                await session.rollback()
            return
        if session.in_transaction():
            if self.wrote_in_autocommit:
                await session.rollback()
                raise RuntimeError("a unit of work wrote more after a write that committed alone")
            await session.commit()
            for announce in self.committed:
                announce()
        for what, step in self.housekeeping:
            await _housekeep(session, what, step)


def unit_of_work(session: AsyncSession | None = None) -> UnitOfWork:
    """A transaction on `session` (the request's by default), committed on a clean exit."""
    return UnitOfWork(db_session() if session is None else session)


async def _housekeep(session: AsyncSession, what: str, step: Housekeeping) -> None:
    try:
        await step(session)
        if session.in_transaction():
            await session.commit()
    except HOUSEKEEPING_FAULTS as error:
        with contextlib.suppress(*HOUSEKEEPING_FAULTS):
            await session.rollback()
        logger.warning("could not %s: %s", what, type(error).__name__)

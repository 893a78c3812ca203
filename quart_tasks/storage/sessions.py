"""The app's database: its engine's lifetime and each request's session."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from typing import Any

from quart import g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.orm import ORMExecuteState, Session
from sqlalchemy.sql import Executable

from quart_tasks.services import services
from quart_tasks.storage.driver import Driver
from quart_tasks.storage.engine import create_engine

READ_ONLY_METHODS = frozenset({"GET", "HEAD"})


class ReadOnlySession(Session):
    """A session for requests that only read, so a write through it is a bug, not a commit."""


@event.listens_for(ReadOnlySession, "before_flush")
def _refuse_flush(*_args: Any) -> None:
    raise RuntimeError("a read-only request tried to write")


@event.listens_for(ReadOnlySession, "do_orm_execute")
def _refuse_writes(state: ORMExecuteState) -> None:
    if not state.is_select:
        raise RuntimeError("a read-only request tried to write")


class Database:
    """Owns the engine for one app: connected before serving, disposed after."""

    def __init__(self, config: Mapping[str, Any]) -> None:
        self.config = config
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.read_sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.driver: Driver | None = None
        # Request sessions still closing after their request was cancelled.
        self.closing: set[asyncio.Task[None]] = set()

    async def connect(self) -> None:
        self.engine = create_engine(self.config)
        self.sessionmaker = async_sessionmaker(self.engine, expire_on_commit=False)
        self.read_sessionmaker = self.sessionmaker
        if self.engine.dialect.name == "postgresql":
            # Under READ COMMITTED every statement takes its own snapshot anyway,
            # so a reading request gains nothing from BEGIN and ROLLBACK but two
            # round trips; it runs its statements in autocommit instead.
            self.read_sessionmaker = async_sessionmaker(
                self.engine.execution_options(isolation_level="AUTOCOMMIT"),
                expire_on_commit=False,
                sync_session_class=ReadOnlySession,
            )
            self.driver = Driver(self.engine)

    async def dispose(self) -> None:
        if self.closing:
            await asyncio.gather(*self.closing, return_exceptions=True)
        if self.engine is not None:
            await self.engine.dispose()
        self.engine = None
        self.sessionmaker = self.read_sessionmaker = None
        self.driver = None


def db_session() -> AsyncSession:
    """The current request's session, opened on first use and closed at teardown.

    A GET or HEAD request gets a session that may only read.
    """
    session: AsyncSession | None = g.get("db_session")
    if session is None:
        db = services().database
        reading = has_request_context() and request.method in READ_ONLY_METHODS
        sessionmaker = db.read_sessionmaker if reading else db.sessionmaker
        if sessionmaker is None:
            raise RuntimeError("the database is not connected: the app is not serving")
        session = sessionmaker()
        g.db_session = session
    return session


def reading_driver() -> Driver | None:
    """The driver, when the current request only reads and holds no connection of its own.

    A reading request's session on PostgreSQL has no transaction to keep its
    statements in (see `Database.connect`), so they may as well skip it, and
    the session need not even be made. Once the request's session holds a
    connection, though, its statements stay on it: a second connection per
    request could leave every request holding one and waiting for another.
    """
    driver = services().database.driver
    if driver is None or not has_request_context() or request.method not in READ_ONLY_METHODS:
        return None
    session: AsyncSession | None = g.get("db_session")
    if session is not None and session.in_transaction():
        return None
    return driver


async def read_rows(statement: Executable, values: Mapping[str, Any]) -> Sequence[Any]:
    """A SELECT's rows: straight on the `reading_driver` when there is one, or else
    through the request's session (`db_session`)."""
    driver = reading_driver()
    if driver is not None:
        return await driver.rows(statement, values)  # type: ignore[arg-type]
    return (await db_session().execute(statement, values)).all()


def is_postgresql(session: AsyncSession) -> bool:
    return session.get_bind().dialect.name == "postgresql"


async def release_connection(session: AsyncSession) -> None:
    """End the session's read-only transaction, handing its connection back to the pool.

    Call it before slow work that needs no database (password hashing): a burst
    of such requests would otherwise hold every pooled connection while they
    wait, and starve requests that need one for milliseconds. Loaded objects
    stay usable (`expire_on_commit=False`).
    """
    await session.commit()


@contextlib.asynccontextmanager
async def best_effort(session: AsyncSession, what: str) -> AsyncIterator[None]:
    """Housekeeping after a request's commit: if it fails, the request must not.

    The client's write is already committed, so an error here (the database
    going away, say) is logged in one line and the request answers as it would
    have; a 503 would make the client retry a write that happened.
    """
    try:
        yield
    except (SQLAlchemyError, OSError, TimeoutError) as error:
        with contextlib.suppress(SQLAlchemyError, OSError, TimeoutError):
            await session.rollback()
        logging.getLogger(__name__).warning("could not %s: %s", what, type(error).__name__)


async def close_request_session(_exc: BaseException | None) -> None:
    session: AsyncSession | None = g.pop("db_session", None)
    # One that never began holds no connection: nothing to hand back.
    if session is None or not session.in_transaction():
        return
    # A client that hangs up now cancels the request, and a rollback cancelled
    # midway discards its connection; shielded, the close goes on without the
    # request and hands the connection back to the pool as it is.
    pending = services().database.closing
    closing = asyncio.ensure_future(session.close())
    pending.add(closing)
    closing.add_done_callback(functools.partial(_forget_closing, pending))
    await asyncio.shield(closing)


def _forget_closing(pending: set[asyncio.Task[None]], closing: asyncio.Task[None]) -> None:
    pending.discard(closing)
    # A failure reached the request, if it was still waiting; retrieved here so that
    # asyncio does not report it again as never retrieved.
    if not closing.cancelled():
        closing.exception()

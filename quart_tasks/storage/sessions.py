"""The app's database: its engine's lifetime and each request's session."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Mapping
from typing import Any

from quart import g, has_request_context, request
from sqlalchemy import event
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
)
from sqlalchemy.orm import ORMExecuteState, Session

from quart_tasks.services import services
from quart_tasks.storage.dialects import is_postgresql
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

    def __init__(self, config: Mapping[str, Any], *, driver: bool) -> None:
        self.config = config
        self.with_driver = driver
        """Whether statements may run straight on asyncpg (`storage.driver`) on PostgreSQL."""
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
        if is_postgresql(self.engine):
            # Under READ COMMITTED every statement takes its own snapshot anyway,
            # so a reading request gains nothing from BEGIN and ROLLBACK but two
            # round trips; it runs its statements in autocommit instead. Not behind
            # a pooler: there SQLAlchemy's statements need a transaction (`engine`).
            reads = (
                self.engine
                if self.config["DB_BEHIND_POOLER"]
                else self.engine.execution_options(isolation_level="AUTOCOMMIT")
            )
            self.read_sessionmaker = async_sessionmaker(
                reads,
                expire_on_commit=False,
                sync_session_class=ReadOnlySession,
            )
            if self.with_driver:
                self.driver = Driver(self.engine)

    @property
    def is_postgresql(self) -> bool:
        if self.engine is None:
            raise RuntimeError("the database is not connected: the app is not serving")
        return is_postgresql(self.engine)

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


def request_session_free() -> bool:
    """Whether the current request's session holds no connection (or there is none).

    Once it holds one, the request's statements stay on it: a second connection
    per request could leave every request holding one and waiting for another.
    """
    session: AsyncSession | None = g.get("db_session")
    return session is None or not session.in_transaction()


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

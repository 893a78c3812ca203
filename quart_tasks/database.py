"""The async engine, the declarative base and the request-scoped session."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, ClassVar

from quart import Quart, current_app, g, has_request_context, request
from sqlalchemy import DateTime, MetaData, event, make_url
from sqlalchemy.engine import Dialect, ExceptionContext
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)
from sqlalchemy.orm import DeclarativeBase, ORMExecuteState, Session
from sqlalchemy.pool import StaticPool
from sqlalchemy.sql import Executable
from sqlalchemy.types import TypeDecorator

from .driver import Driver
from .pool import FairAsyncQueuePool

NAMING_CONVENTION = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UTCDateTime(TypeDecorator[datetime]):
    """A timezone-aware UTC datetime on every backend.

    SQLite keeps no offset, so values are normalised to UTC on the way in and
    marked as UTC on the way out.
    """

    impl = DateTime(timezone=True)
    cache_ok = True

    @property
    def python_type(self) -> type[datetime]:
        return datetime

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given; use an aware UTC datetime")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime}


def create_engine(config: dict[str, Any]) -> AsyncEngine:
    """An engine for `DATABASE_URL`, tuned for its backend."""
    url = make_url(config["DATABASE_URL"])
    if url.get_backend_name() != "sqlite":
        return create_async_engine(
            url,
            poolclass=FairAsyncQueuePool,
            pool_size=config["DB_POOL_SIZE"],
            max_overflow=config["DB_MAX_OVERFLOW"],
            pool_timeout=config["DB_POOL_TIMEOUT"],
            # After a database restart the first query on a dead connection fails
            # (503) and SQLAlchemy invalidates the whole pool; a ping on every
            # checkout would spare that one request at the cost of a round trip
            # on all of them.
            pool_pre_ping=config["DB_POOL_PRE_PING"],
            connect_args={"timeout": config["DB_CONNECT_TIMEOUT"]},
        )
    in_memory = url.database in (None, "", ":memory:")
    if in_memory:
        # One shared connection, or every session would see its own empty database.
        engine = create_async_engine(url, poolclass=StaticPool)
    else:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)  # type: ignore[arg-type]
        # One connection per process: SQLite lets one writer in at a time, and
        # writers on several connections wait in its busy handler, which sleeps
        # up to 100 ms a try; queued on the pool instead they go in turn.
        engine = create_async_engine(
            url,
            poolclass=FairAsyncQueuePool,
            pool_size=1,
            max_overflow=0,
            pool_timeout=config["DB_POOL_TIMEOUT"] * 6,
        )
    _configure_sqlite(engine, busy_timeout_ms=config["SQLITE_BUSY_TIMEOUT_MS"], wal=not in_memory)
    return engine


def _configure_sqlite(engine: AsyncEngine, *, busy_timeout_ms: int, wal: bool) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute(f"PRAGMA busy_timeout={int(busy_timeout_ms)}")
        if wal:
            cursor.execute("PRAGMA journal_mode=WAL")
            cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.close()

    # A statement cancelled with its request keeps its connection: aiosqlite runs it
    # to the end on the connection's thread, and what comes next queues behind it.
    # Invalidating (SQLAlchemy's default) leaves the cursor open, and while the
    # cancelled task's traceback holds it SQLite cannot close the connection: its
    # write lock outlives it and later writes wait out the busy timeout and fail.
    # A cancelled commit or rollback (no statement) is still invalidated: no cursor
    # is open then, and invalidating is what hands the connection back to the pool,
    # as nothing after the cancellation would.
    @event.listens_for(engine.sync_engine, "handle_error")
    def on_error(context: ExceptionContext) -> None:
        if (
            isinstance(context.original_exception, asyncio.CancelledError)
            and context.statement is not None
        ):
            context.is_disconnect = False


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
    """Owns the engine for one app: created before serving, disposed after."""

    def __init__(self) -> None:
        self.engine: AsyncEngine | None = None
        self.sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.read_sessionmaker: async_sessionmaker[AsyncSession] | None = None
        self.driver: Driver | None = None
        # Request sessions still closing after their request was cancelled.
        self.closing: set[asyncio.Task[None]] = set()

    def init_app(self, app: Quart) -> None:
        app.extensions["database"] = self
        app.before_serving(self.connect)
        app.after_serving(self.dispose)
        app.teardown_appcontext(close_request_session)

    async def connect(self) -> None:
        self.engine = create_engine(current_app.config)
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


def database() -> Database:
    db: Database = current_app.extensions["database"]
    return db


def db_session() -> AsyncSession:
    """The current request's session, opened on first use and closed at teardown.

    A GET or HEAD request gets a session that may only read.
    """
    session: AsyncSession | None = g.get("db_session")
    if session is None:
        db = database()
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
    driver = database().driver
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
    pending = database().closing
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

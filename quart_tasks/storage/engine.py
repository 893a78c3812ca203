"""The async engine for `DATABASE_URL`, tuned for its backend."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from sqlalchemy import event, make_url
from sqlalchemy.engine import ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine
from sqlalchemy.pool import StaticPool

from quart_tasks.storage.internals import check_storage_internals
from quart_tasks.storage.pool import FairAsyncQueuePool


def pooler_options() -> dict[str, Any]:
    """Behind a transaction-mode pooler (PgBouncer) a connection's statements may run on
    any server connection, so none may count on a statement prepared before:

    - asyncpg caches nothing, so it runs each statement unnamed, in one exchange (the
      direct path's statements, `storage.driver`);
    - SQLAlchemy's dialect, which prepares each statement by name, caches none, and
      names each afresh (a server connection outlives its clients and keeps the names
      they prepared). Its statements then need a transaction, so that preparing and
      running meet one server connection: see `sessions.Database.connect`.
    """
    return {
        "statement_cache_size": 0,
        "prepared_statement_cache_size": 0,
        "prepared_statement_name_func": lambda: f"__qt_{uuid.uuid4().hex}__",
    }


def create_engine(config: Mapping[str, Any]) -> AsyncEngine:
    """An engine for `DATABASE_URL`, tuned for its backend."""
    check_storage_internals()
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
            connect_args={
                "timeout": config["DB_CONNECT_TIMEOUT"],
                **(pooler_options() if config["DB_BEHIND_POOLER"] else {}),
            },
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

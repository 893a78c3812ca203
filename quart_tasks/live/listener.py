"""PostgreSQL's LISTEN on one dedicated connection per process: any commit anywhere wakes us."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Coroutine
from typing import Any

import asyncpg
from sqlalchemy import make_url
from sqlalchemy.dialects.postgresql.asyncpg import PGDialect_asyncpg

from quart_tasks.tasks.log.rounds import CHANNEL

logger = logging.getLogger(__name__)
FIRST_RETRY_DELAY = 0.5
MAX_RETRY_DELAY = 10.0
CHECK_EVERY = 5.0
DIALECT_OPTIONS = ("prepared_statement_cache_size", "prepared_statement_name_func")


def listener_connect_args(database_url: str, connect_timeout: float) -> dict[str, Any]:
    """asyncpg's arguments for `database_url`, as SQLAlchemy's dialect reads it for the
    pool's connections, query options included (`ssl`, a socket directory as `host`),
    less the options that are the dialect's own."""
    dialect = PGDialect_asyncpg()  # type: ignore[no-untyped-call]
    _, options = dialect.create_connect_args(make_url(database_url))  # type: ignore[no-untyped-call]
    for dialect_option in DIALECT_OPTIONS:
        options.pop(dialect_option, None)
    return {**options, "timeout": connect_timeout}


def postgres_listener(
    database_url: str, connect_timeout: float
) -> Callable[[Callable[[], None]], Coroutine[Any, Any, None]]:
    """A task body that calls `wake` on every notification, for as long as it runs.

    It reconnects by itself with a growing delay, and wakes once after each
    (re)connection so that the broker back-fills what it missed meanwhile.
    """
    connect_args = listener_connect_args(database_url, connect_timeout)

    async def listen(wake: Callable[[], None]) -> None:
        delay = FIRST_RETRY_DELAY
        while True:
            connection: asyncpg.Connection | None = None
            try:
                connection = await asyncpg.connect(**connect_args)
                await connection.add_listener(CHANNEL, lambda *_: wake())
                delay = FIRST_RETRY_DELAY
                wake()
                while not connection.is_closed():
                    await asyncio.sleep(CHECK_EVERY)
                    await connection.execute("SELECT 1")
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
                logger.warning("listening for task events failed (%s); retrying", error)
            finally:
                if connection is not None:
                    with contextlib.suppress(Exception):
                        await connection.close(timeout=1)
            await asyncio.sleep(delay)
            delay = min(delay * 2, MAX_RETRY_DELAY)

    return listen

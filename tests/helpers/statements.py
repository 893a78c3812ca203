"""What the app sends its database, whichever way a statement goes.

Statements run through SQLAlchemy show in its cursor events; reads run
straight on asyncpg (`quart_tasks.storage.driver`), and the BEGIN and COMMIT of
SQLAlchemy's transactions, show only to the connection's query loggers.
asyncpg's lookups of a type's codec, made once per connection, are left out, and
so are the rounds that position events after a commit (`Sequencer`): they are
the process's work, not the request's.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from quart import Quart
from sqlalchemy import event

from quart_tasks.tasks.log.sequencer import ROUNDS_TASK
from tests.helpers.apps import app_database


@contextmanager
def statements_run(app: Quart, type_lookups: bool = False) -> Iterator[list[tuple[str, Any]]]:
    """Each statement sent while the block runs, with its parameters, in order; asyncpg's
    type lookups too if `type_lookups`."""
    engine = app_database(app).engine.sync_engine  # type: ignore[union-attr]
    pool = engine.pool
    sent: list[tuple[str, Any]] = []

    def log(record: Any) -> None:
        if type_lookups or not asyncpg_type_lookup(record.query):
            sent.append((record.query, record.args))

    def on_execute(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        if not in_rounds():
            sent.append((statement, parameters))

    def on_checkout(dbapi_connection: Any, *_: Any) -> None:
        if not in_rounds():
            dbapi_connection.driver_connection.add_query_logger(log)

    def on_checkin(dbapi_connection: Any, *_: Any) -> None:
        if dbapi_connection is not None:
            dbapi_connection.driver_connection.remove_query_logger(log)

    loggers = engine.dialect.name == "postgresql"
    if loggers:
        event.listen(pool, "checkout", on_checkout)
        event.listen(pool, "checkin", on_checkin)
    event.listen(engine, "before_cursor_execute", on_execute)
    try:
        yield sent
    finally:
        if loggers:
            event.remove(pool, "checkout", on_checkout)
            event.remove(pool, "checkin", on_checkin)
        event.remove(engine, "before_cursor_execute", on_execute)


def in_rounds() -> bool:
    task = asyncio.current_task()
    return task is not None and task.get_name() == ROUNDS_TASK


def asyncpg_type_lookup(statement: str) -> bool:
    """asyncpg's own statements that learn an array type's codec: once per connection and type."""
    words = " ".join(statement.split())
    return words.startswith("WITH RECURSIVE typeinfo_tree") or "set_config('jit'" in words


def first_word(statement: str) -> str:
    return statement.strip().rstrip(";").split()[0].upper()

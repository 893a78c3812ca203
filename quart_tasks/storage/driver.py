"""Statements run straight on asyncpg, on PostgreSQL, past the session's layers.

A task read through an `AsyncSession` costs about 340 µs of CPU; the same
prepared statement run on the pooled connection's asyncpg connection costs
about 100. The statements are still SQLAlchemy's (built once, compiled once
here for the engine's dialect); what is skipped is the session, the
`Connection` and result layers, and the greenlet hops between them. Statements
that stand alone run each in autocommit: a reading request's (see
`Database.connect`), a create without an Idempotency-Key and a change without
`If-Match`, each one statement with its event. The pool still hands out and
takes back the connection.

A connection that fails as the database goes away is handled as SQLAlchemy
handles it: it is discarded, with every connection the pool opened before
it, and the request answers 503 (`DatabaseUnavailable` is a
`ConnectionError`).
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, cast

import asyncpg
from sqlalchemy.engine import Dialect
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.sql import ClauseElement, Executable
from sqlalchemy.sql.compiler import SQLCompiler

from quart_tasks.storage.outages import unavailable

MAX_COMPILED = 512
PLANNED_EACH_RUN = "planned_each_run"
"""An execution option: the statement's best plan depends on its values.

A prepared statement that asyncpg keeps is planned by PostgreSQL for its
first five runs' values, then often once for any values (a generic plan).
For a search, the best plan depends on how many rows the fragment matches:
a generic plan that read the trigram index and sorted served one owner's
search in 2 ms and another's in 550 ms. Such a statement goes as an unnamed
one, planned at each run with its values (0.5-3 ms of the server's CPU).
"""


class Row(asyncpg.Record):  # type: ignore[misc]
    """A record whose columns read as attributes too, like a SQLAlchemy row."""

    def __getattr__(self, name: str) -> Any:
        try:
            return self[name]
        except KeyError:
            raise AttributeError(name) from None


class DatabaseUnavailable(ConnectionError):
    """The driver lost its connection, or the server refuses work for now."""


@dataclass(frozen=True, slots=True)
class DriverStatement:
    """A SQLAlchemy statement compiled once: its SQL and how to turn values into its arguments."""

    sql: str
    parameters: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    fixed: Mapping[str, Any]
    """The values of the statement's literals (`literal(...)`, `version=1`)."""
    planned_each_run: bool = False
    """Planned for its values every time (`PLANNED_EACH_RUN`), never from a kept plan."""

    @classmethod
    def compile(cls, statement: ClauseElement, dialect: Dialect) -> DriverStatement:
        compiled = cast(SQLCompiler, statement.compile(dialect=dialect))
        names = compiled.positiontup or ()
        binds = [compiled.binds[name] for name in names]
        if any(bind.expanding for bind in binds):
            raise ValueError("an expanding IN needs SQLAlchemy's rendering, not the driver")
        return cls(
            planned_each_run=isinstance(statement, Executable)
            and bool(statement.get_execution_options().get(PLANNED_EACH_RUN)),
            sql=compiled.string,
            parameters=tuple(
                (name, bind.type.dialect_impl(dialect).bind_processor(dialect))
                for name, bind in zip(names, binds, strict=True)
            ),
            fixed={
                name: bind.effective_value
                for name, bind in zip(names, binds, strict=True)
                if not bind.required
            },
        )

    def arguments(self, values: Mapping[str, Any]) -> list[Any]:
        values = {**self.fixed, **values} if self.fixed else values
        return [
            values[name] if process is None else process(values[name])
            for name, process in self.parameters
        ]


class Driver:
    """Runs statements on the engine's pooled connections, without a session."""

    def __init__(self, engine: AsyncEngine) -> None:
        self.engine = engine
        self._compiled: dict[ClauseElement, DriverStatement] = {}

    def compiled(self, statement: ClauseElement) -> DriverStatement:
        """Compiled on first use. The hot paths' statements are each built once
        (`tasks.store.statements`); the bound only keeps any other from piling up."""
        found = self._compiled.get(statement)
        if found is None:
            if len(self._compiled) >= MAX_COMPILED:
                self._compiled.clear()
            found = DriverStatement.compile(statement, self.engine.dialect)
            self._compiled[statement] = found
        return found

    async def rows(self, statement: ClauseElement, values: Mapping[str, Any]) -> list[Row]:
        compiled = self.compiled(statement)
        arguments = compiled.arguments(values)
        try:
            pooled = await self.engine.raw_connection()
        except Exception as error:
            # A new connection refused: the server is shutting down or starting up
            # (asyncpg's own error, unwrapped by the pool), or out of reach.
            if unavailable(error):
                raise DatabaseUnavailable(str(error)) from error
            raise
        try:
            connection: asyncpg.Connection = pooled.driver_connection
            if compiled.planned_each_run:
                unnamed = await connection.prepare(compiled.sql, name="", record_class=Row)
                rows: list[Row] = await unnamed.fetch(*arguments)
            else:
                rows = await connection.fetch(compiled.sql, *arguments, record_class=Row)
        except BaseException as error:
            if unavailable(error):
                # As SQLAlchemy does on a disconnect: every connection opened
                # before this one is as likely to be dead.
                self.engine.pool._invalidate(pooled, error)
                raise DatabaseUnavailable(str(error)) from error
            if isinstance(error, asyncpg.PostgresError | asyncio.CancelledError):
                # The statement failed, not the link; or it was cancelled, most often
                # because its client has gone, and asyncpg has asked the server to
                # stop it and makes the connection's next statement wait until it
                # has. Either way the connection is sound, and a new one costs more.
                pooled.close()
                raise
            # A fault in the client: the connection's protocol state is unknown,
            # so it is not handed to anyone else.
            pooled.invalidate(error)
            raise
        pooled.close()
        return rows

    async def first(self, statement: ClauseElement, values: Mapping[str, Any]) -> Row | None:
        rows = await self.rows(statement, values)
        return rows[0] if rows else None

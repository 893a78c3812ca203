"""What an error from the database means: that it cannot serve now, or that a statement is wrong.

The one place that decides it, for every way the app reaches PostgreSQL: the
session (SQLAlchemy's wrapped errors), the asyncpg path and what it gathers
(asyncpg's own), a new connection refused while the server shuts down or
starts up, the pool's timeout, and the network. Whatever it calls unavailable
answers 503 with `Retry-After` (`web.errors`), and a connection that met it is
not used again (`storage.driver`).
"""

from __future__ import annotations

import errno
import socket

import asyncpg
from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeoutError

UNAVAILABLE_SQLSTATE_PREFIXES = (
    "08",  # connection exception
    "53",  # insufficient resources: too many connections, out of memory or disk
    "57P",  # operator intervention: shutting down, crashed, not yet accepting connections
)
READ_ONLY_SQLSTATE = "25006"
"""A write refused as read-only: after a failover, the old primary came back as a
standby, or an operator set `default_transaction_read_only`. Only a write meets it."""

NETWORK_ERRNOS = frozenset(
    {errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN, errno.EHOSTDOWN, errno.ECONNABORTED}
)

UNAVAILABLE_TYPES: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeoutError,
    OSError,  # ConnectionError, TimeoutError, socket.gaierror among them
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
    asyncpg.InternalClientError,
)
"""Every type an unavailable database is raised as; `unavailable` decides each error."""


def unavailable(error: BaseException) -> bool:
    """Whether `error` says the database cannot serve now, rather than that a query is wrong."""
    if isinstance(error, DBAPIError):
        if isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated:
            return True
        return _unavailable_sqlstate(error.orig)
    if isinstance(error, PoolTimeoutError | ConnectionError | TimeoutError | socket.gaierror):
        return True
    if isinstance(error, OSError):
        return error.errno in NETWORK_ERRNOS
    # asyncpg's: a connection closed under a statement, or in an unknown state.
    if isinstance(error, asyncpg.InterfaceError | asyncpg.InternalClientError):
        return True
    if isinstance(error, asyncpg.PostgresError):
        return _unavailable_sqlstate(error)
    # The dialect's adaptation of asyncpg's error, which the pool raises unwrapped when
    # it cannot open a connection: judged by what it adapts.
    cause = error.__cause__
    return isinstance(cause, Exception) and unavailable(cause)


def _unavailable_sqlstate(error: BaseException | None) -> bool:
    sqlstate = getattr(error, "sqlstate", None) or getattr(error, "pgcode", None)
    if not isinstance(sqlstate, str):
        return False
    return sqlstate.startswith(UNAVAILABLE_SQLSTATE_PREFIXES) or sqlstate == READ_ONLY_SQLSTATE

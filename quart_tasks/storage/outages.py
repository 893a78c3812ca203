"""What an error from the database means: that it cannot serve now, or that a statement is wrong."""

from __future__ import annotations

from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

UNAVAILABLE_SQLSTATE_PREFIXES = (
    "08",  # connection exception
    "53",  # insufficient resources: too many connections, out of memory or disk
    "57P",  # operator intervention: shutting down, crashed, not yet accepting connections
)


def database_unavailable(error: DBAPIError) -> bool:
    """Whether `error` says the database cannot serve now, rather than that a query is wrong.

    The asyncpg dialect raises a plain `DBAPIError` for some of these (a server
    that is shutting down or starting up), so the SQLSTATE decides.
    """
    if isinstance(error, OperationalError | InterfaceError) or error.connection_invalidated:
        return True
    sqlstate = getattr(error.orig, "sqlstate", None) or getattr(error.orig, "pgcode", None)
    return isinstance(sqlstate, str) and sqlstate.startswith(UNAVAILABLE_SQLSTATE_PREFIXES)

"""The one way to ask whether the database is PostgreSQL, of whatever is at hand."""

from __future__ import annotations

from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession

POSTGRESQL = "postgresql"


def is_postgresql(of: AsyncSession | AsyncEngine | str) -> bool:
    """Whether a session's database, an engine's, or a `DATABASE_URL`'s (before there is
    an engine) is PostgreSQL."""
    if isinstance(of, str):
        return make_url(of).get_backend_name() == POSTGRESQL
    if isinstance(of, AsyncSession):
        return of.get_bind().dialect.name == POSTGRESQL
    return of.dialect.name == POSTGRESQL

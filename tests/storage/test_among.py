"""`among`: a column among a subquery's values, written for each database."""

from __future__ import annotations

from sqlalchemy import Column, Integer, MetaData, Table, select
from sqlalchemy.dialects.postgresql.base import PGDialect
from sqlalchemy.dialects.sqlite.base import SQLiteDialect

from quart_tasks.storage.among import among

THINGS = Table("things", MetaData(), Column("id", Integer, primary_key=True), Column("n", Integer))


def test_postgresql_reads_the_values_as_one_array_and_other_databases_as_in() -> None:
    chosen = select(THINGS.c.id).where(THINGS.c.n > 1).limit(3)
    statement = select(THINGS.c.n).where(among(THINGS.c.id, chosen))
    on_postgresql = str(statement.compile(dialect=PGDialect()))  # type: ignore[no-untyped-call]
    on_sqlite = str(statement.compile(dialect=SQLiteDialect()))
    assert "WHERE things.id = ANY(ARRAY(SELECT things.id \nFROM things \nWHERE things.n >" in (
        on_postgresql
    )
    assert "WHERE things.id IN (SELECT things.id \nFROM things \nWHERE things.n > ?" in on_sqlite
    assert "= 1" not in on_sqlite.split("LIMIT")[-1]


def test_the_values_chosen_are_part_of_the_cache_key() -> None:
    """Two statements that differ only in their subquery never share a compiled form."""
    by_n = select(THINGS.c.id).order_by(THINGS.c.n)
    by_id = select(THINGS.c.id).order_by(THINGS.c.id)
    first = select(THINGS.c.n).where(among(THINGS.c.id, by_n))
    second = select(THINGS.c.n).where(among(THINGS.c.id, by_id))
    again = select(THINGS.c.n).where(among(THINGS.c.id, by_n))
    assert first._generate_cache_key() != second._generate_cache_key()
    assert first._generate_cache_key() == again._generate_cache_key()

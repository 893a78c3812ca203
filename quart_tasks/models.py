"""Every table, imported in one place so the metadata is complete (Alembic, tests), with
what `metadata.create_all` makes beside them (the counts' triggers, the rounds' function)."""

from sqlalchemy import Index
from sqlalchemy.sql.elements import UnaryExpression

from quart_tasks.auth.models import RefreshToken, TokenFamily, User
from quart_tasks.idempotency.models import IdempotencyKey
from quart_tasks.storage.base import Base
from quart_tasks.tasks.log import rounds  # noqa: F401  (registers task_events_round())
from quart_tasks.tasks.log.models import TaskEvent, TaskEventRound
from quart_tasks.tasks.models import Task
from quart_tasks.tasks.store.counts import TaskCount


def made_on(schema_item: object, dialect: str) -> bool:
    """Whether `dialect` has `schema_item`: an index made only on one database
    (`Index.ddl_if`, such as the trigram index) is not missing from the others."""
    condition = getattr(schema_item, "_ddl_if", None)
    return condition is None or condition.dialect in (None, dialect)


def _orders_a_column(index: Index) -> bool:
    return any(isinstance(expression, UnaryExpression) for expression in index.expressions)


ORDERED_INDEXES = frozenset(
    str(index.name)
    for table in Base.metadata.tables.values()
    for index in table.indexes
    if _orders_a_column(index)
)
"""Indexes that hold a column descending (the all-owners list indexes)."""


def compared_on(schema_item: object, reflected: bool, dialect: str) -> bool:
    """Whether a comparison of the models with `dialect`'s schema looks at `schema_item`:
    what `dialect` is meant to have (see `made_on`), less, on SQLite, the
    `ORDERED_INDEXES`: SQLite's reflection does not say which way a column is ordered,
    so such an index would never match (tests check them with `PRAGMA index_xinfo`)."""
    if dialect == "sqlite" and getattr(schema_item, "name", None) in ORDERED_INDEXES:
        return False
    return reflected or made_on(schema_item, dialect)


__all__ = [
    "ORDERED_INDEXES",
    "Base",
    "IdempotencyKey",
    "RefreshToken",
    "Task",
    "TaskCount",
    "TaskEvent",
    "TaskEventRound",
    "TokenFamily",
    "User",
    "compared_on",
    "made_on",
]

"""Every table, imported in one place so the metadata is complete (Alembic, tests), with
what `metadata.create_all` makes beside them (the counts' triggers, the rounds' function)."""

from quart_tasks.auth.models import RefreshToken, TokenFamily, User
from quart_tasks.idempotency.models import IdempotencyKey
from quart_tasks.storage.base import Base
from quart_tasks.tasks import event_log  # noqa: F401  (registers task_events_round())
from quart_tasks.tasks.counts import TaskCount
from quart_tasks.tasks.models import Task, TaskEvent, TaskEventRound


def made_on(schema_item: object, dialect: str) -> bool:
    """Whether `dialect` has `schema_item`: an index made only on one database
    (`Index.ddl_if`, such as the trigram index) is not missing from the others."""
    condition = getattr(schema_item, "_ddl_if", None)
    return condition is None or condition.dialect in (None, dialect)


__all__ = [
    "Base",
    "IdempotencyKey",
    "RefreshToken",
    "Task",
    "TaskCount",
    "TaskEvent",
    "TaskEventRound",
    "TokenFamily",
    "User",
    "made_on",
]

"""Every table, imported in one place so the metadata is complete (Alembic, tests)."""

from .auth.models import RefreshToken, TokenFamily
from .database import Base
from .idempotency.models import IdempotencyKey
from .live.models import TaskEvent
from .tasks.counts import TaskCount
from .tasks.models import Task
from .users.models import User

__all__ = [
    "Base",
    "IdempotencyKey",
    "RefreshToken",
    "Task",
    "TaskCount",
    "TaskEvent",
    "TokenFamily",
    "User",
]

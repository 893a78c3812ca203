"""Every table, imported in one place so the metadata is complete (Alembic, tests)."""

from .database import Base
from .tasks.models import Task

__all__ = ["Base", "Task"]

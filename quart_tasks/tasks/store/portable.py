"""The portable task store: every step through SQLAlchemy's session, on SQLite and
PostgreSQL alike; and the factory's choice between it and the fast store."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from quart_tasks.storage.dialects import is_postgresql
from quart_tasks.tasks.store.session import SessionSteps


class PortableTaskStore(SessionSteps):
    """A `TaskStore` through the session alone."""


def uses_fast_path(config: Mapping[str, Any]) -> bool:
    """Whether tasks go through `FastTaskStore`: on PostgreSQL, unless `DB_FAST_PATH` is off."""
    return is_postgresql(config["DATABASE_URL"]) and bool(config["DB_FAST_PATH"])

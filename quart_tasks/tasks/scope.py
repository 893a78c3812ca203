"""Whose tasks a caller may touch: the one place every task query asks.

A user sees only their own tasks; another user's task is indistinguishable
from a missing one. An admin may act on any task, and lists their own unless
they ask for one owner's (`owner=<username>`) or everyone's (`owner=*`).
"""

from __future__ import annotations

from typing import Any, Literal

from sqlalchemy import ColumnElement

from quart_tasks.auth.caller import Principal, forbidden
from quart_tasks.auth.models import username_key
from quart_tasks.tasks.models import Task

EVERY_OWNER = "*"

ListScope = Literal["caller", "named", "everyone"]


def reaches_every_task(caller: Principal) -> bool:
    """Whether `caller` may read, change or delete any task, not only their own."""
    return caller.is_admin


def reachable_by(caller: Principal) -> list[ColumnElement[bool]]:
    """Conditions for a task `caller` may read, change or delete."""
    return [] if reaches_every_task(caller) else [Task.owner_id == caller.user_id]


def list_scope(caller: Principal, owner: str | None) -> ListScope:
    """Whose tasks a list shows `caller`, given the `owner` it asked for."""
    if owner is None:
        return "caller"
    if not caller.is_admin:
        raise forbidden("Only an admin may list another owner's tasks")
    return "everyone" if owner == EVERY_OWNER else "named"


def scope_values(caller: Principal, owner: str | None) -> dict[str, Any]:
    """The values a list's scope binds (see `list_scope`): the caller's id, and the
    named owner's username key."""
    named = None if owner is None or owner == EVERY_OWNER else username_key(owner)
    return {"owner_id": caller.user_id, "owner_key": named}

"""Whose tasks a caller may touch: the one place every task query asks.

A user sees only their own tasks; another user's task is indistinguishable
from a missing one. An admin may act on any task, and lists their own unless
they ask for one owner's (`owner=<username>`) or everyone's (`owner=*`).
"""

from __future__ import annotations

from sqlalchemy import ColumnElement, select

from ..security import Principal, forbidden
from ..users.models import User, username_key
from .models import Task

EVERY_OWNER = "*"


def reachable_by(caller: Principal) -> list[ColumnElement[bool]]:
    """Conditions for a task `caller` may read, change or delete."""
    return [] if caller.is_admin else [Task.owner_id == caller.user_id]


def listed_for(caller: Principal, owner: str | None) -> list[ColumnElement[bool]]:
    """Conditions for the tasks a list shows `caller`, given the `owner` it asked for."""
    if owner is None:
        return [Task.owner_id == caller.user_id]
    if not caller.is_admin:
        raise forbidden("Only an admin may list another owner's tasks")
    if owner == EVERY_OWNER:
        return []
    owner_id = select(User.id).where(User.username_key == username_key(owner))
    return [Task.owner_id == owner_id.scalar_subquery()]

"""Users for tests, inserted straight into the database, each password hashed once.

Making a user through the API costs an admin's login and an argon2 hash per user;
inserting the row costs neither. The hash uses the tests' cheap argon2 settings
(`settings_for_test`), so the app verifies it without asking for a rehash.
"""

from __future__ import annotations

import functools

from argon2 import PasswordHasher
from quart import Quart

from quart_tasks.auth.models import Role
from quart_tasks.storage.unit_of_work import unit_of_work
from quart_tasks.users.queries import create_user
from tests.helpers.apps import app_database

DEFAULT_PASSWORD = "correct horse battery"


@functools.cache
def password_hash(password: str) -> str:
    return PasswordHasher(time_cost=1, memory_cost=8, parallelism=1).hash(password)


async def insert_user(
    app: Quart, username: str, password: str = DEFAULT_PASSWORD, role: Role = "user"
) -> int:
    """A new user of `app`'s database, as `create_user` writes it; their id."""
    sessionmaker = app_database(app).sessionmaker
    assert sessionmaker is not None, "the app is not serving"
    async with sessionmaker() as session, unit_of_work(session) as work:
        user = await create_user(
            work.session, username=username, password_hash=password_hash(password), role=role
        )
    return user.id

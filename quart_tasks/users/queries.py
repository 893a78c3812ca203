"""Every statement about users."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.auth.models import Role, User, username_key
from quart_tasks.web.errors import APIError
from quart_tasks.web.pagination import PageRequest


def username_taken() -> APIError:
    return APIError(409, "conflict", "That username is taken")


async def create_user(
    session: AsyncSession, *, username: str, password_hash: str, role: Role = "user"
) -> User:
    """Add a user; a username that differs from a taken one only in case is taken too."""
    user = User(
        username=username,
        username_key=username_key(username),
        password_hash=password_hash,
        role=role,
    )
    session.add(user)
    try:
        await session.flush()
    except IntegrityError:  # the unit of work rolls back
        raise username_taken() from None
    return user


async def list_users(session: AsyncSession, page: PageRequest) -> tuple[Sequence[User], int]:
    total = await session.scalar(select(func.count()).select_from(User))
    users = await session.scalars(
        select(User).order_by(User.id).limit(page.page_size).offset(page.offset)
    )
    return users.all(), total or 0

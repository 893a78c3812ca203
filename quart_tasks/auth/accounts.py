"""The statements login needs about an account: find it by username, store a new hash."""

from __future__ import annotations

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.auth.models import User, username_key


async def find_user(session: AsyncSession, username: str) -> User | None:
    result = await session.scalars(select(User).where(User.username_key == username_key(username)))
    return result.one_or_none()


async def set_password_hash(session: AsyncSession, user: User, password_hash: str) -> None:
    user.password_hash = password_hash

"""Login sessions: token families, refresh-token rotation and reuse detection."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from datetime import timedelta

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from ..database import utcnow
from ..errors import unauthorized
from ..users.models import User
from .models import RefreshToken, TokenFamily


def _digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


async def start_session(session: AsyncSession, user: User, lifetime: int) -> tuple[str, str]:
    """A new family for `user` and its first refresh token: (family id, refresh token)."""
    family = TokenFamily(id=uuid.uuid4().hex, user_id=user.id)
    session.add(family)
    await session.flush()
    refresh_token = _add_refresh_token(session, family.id, lifetime)
    await session.commit()
    return family.id, refresh_token


async def rotate(session: AsyncSession, presented: str, lifetime: int) -> tuple[User, str, str]:
    """Spend `presented` and issue its successor: (user, family id, new refresh token).

    A token presented a second time means it was stolen or replayed: its whole
    family is revoked, so neither the thief nor the owner can refresh again.
    """
    row = (
        await session.execute(
            select(RefreshToken, TokenFamily, User)
            .join(TokenFamily, RefreshToken.family_id == TokenFamily.id)
            .join(User, TokenFamily.user_id == User.id)
            .where(RefreshToken.token_hash == _digest(presented))
        )
    ).one_or_none()
    if row is None:
        raise unauthorized("Invalid refresh token", invalid_token=True)
    token, family, user = row
    family_id = family.id  # the rollback below expires the loaded objects
    if family.revoked_at is not None:
        raise unauthorized("Refresh token revoked", invalid_token=True)
    now = utcnow()
    if token.expires_at <= now:
        raise unauthorized("Refresh token expired", invalid_token=True)
    spent = await session.execute(
        update(RefreshToken)
        .where(RefreshToken.id == token.id, RefreshToken.spent_at.is_(None))
        .values(spent_at=now)
    )
    if spent.rowcount != 1:  # type: ignore[attr-defined]
        await session.rollback()
        await revoke_family(session, family_id)
        raise unauthorized("Refresh token reused: the session is revoked", invalid_token=True)
    successor = _add_refresh_token(session, family_id, lifetime)
    await session.commit()
    return user, family_id, successor


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    await session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )
    await session.commit()


async def session_user(session: AsyncSession, user_id: int, family_id: str) -> User | None:
    """The user of an access token, while the user exists and its session is not revoked."""
    result = await session.scalars(
        select(User)
        .join(TokenFamily, TokenFamily.user_id == User.id)
        .where(User.id == user_id, TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
    )
    return result.one_or_none()


def _add_refresh_token(session: AsyncSession, family_id: str, lifetime: int) -> str:
    refresh_token = secrets.token_urlsafe(32)
    session.add(
        RefreshToken(
            family_id=family_id,
            token_hash=_digest(refresh_token),
            expires_at=utcnow() + timedelta(seconds=lifetime),
        )
    )
    return refresh_token

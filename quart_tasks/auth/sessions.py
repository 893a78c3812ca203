"""Login sessions: token families, refresh-token rotation and reuse detection."""

from __future__ import annotations

import hashlib
import random
import secrets
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, exists, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.auth.models import RefreshToken, TokenFamily, User
from quart_tasks.services import services
from quart_tasks.storage.base import utcnow
from quart_tasks.web.errors import unauthorized


def _digest(refresh_token: str) -> str:
    return hashlib.sha256(refresh_token.encode()).hexdigest()


async def start_session(session: AsyncSession, user: User, lifetime: int) -> tuple[str, str]:
    """A new family for `user` and its first refresh token: (family id, refresh token)."""
    family = TokenFamily(id=uuid.uuid4().hex, user_id=user.id)
    session.add(family)
    await session.flush()
    refresh_token = _add_refresh_token(session, family.id, lifetime)
    return family.id, refresh_token


def purge_expired_sometimes(every: int) -> Callable[[AsyncSession], Awaitable[None]]:
    """A login's housekeeping: about one login in `every` purges expired tokens
    (`purge_expired`), so no separate daemon is needed."""

    async def purge(session: AsyncSession) -> None:
        if every > 0 and random.randrange(every) == 0:
            await purge_expired(session)

    return purge


async def purge_expired(session: AsyncSession, batch: int = 1000) -> None:
    """Expired refresh tokens, then families with no token left (their access tokens,
    shorter-lived than any refresh token, have expired too)."""
    expired = select(RefreshToken.id).where(RefreshToken.expires_at <= utcnow()).limit(batch)
    await session.execute(delete(RefreshToken).where(RefreshToken.id.in_(expired)))
    empty = (
        select(TokenFamily.id)
        .where(~exists().where(RefreshToken.family_id == TokenFamily.id))
        .limit(batch)
    )
    await session.execute(delete(TokenFamily).where(TokenFamily.id.in_(empty)))


@dataclass(frozen=True, slots=True)
class Rotated:
    user: User
    family_id: str
    refresh_token: str
    """The successor of the token presented."""


async def rotate(session: AsyncSession, presented: str, lifetime: int) -> Rotated | None:
    """Spend `presented` and issue its successor; None when it had been spent already.

    A token presented a second time means it was stolen or replayed: its whole
    family is revoked, so neither the thief nor the owner can refresh again. The
    revocation is written in the caller's unit of work, which must commit it.
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
    family_id = family.id
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
        await revoke_family(session, family_id)
        return None
    return Rotated(user, family_id, _add_refresh_token(session, family_id, lifetime))


async def revoke_family(session: AsyncSession, family_id: str) -> None:
    services().session_cache.forget_family(family_id)
    await session.execute(
        update(TokenFamily)
        .where(TokenFamily.id == family_id, TokenFamily.revoked_at.is_(None))
        .values(revoked_at=utcnow())
    )


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

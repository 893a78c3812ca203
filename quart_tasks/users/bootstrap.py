"""The `API_USER` account: created as admin when missing, never overwritten."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker

from quart_tasks.auth.accounts import find_user
from quart_tasks.auth.passwords import Passwords
from quart_tasks.storage.unit_of_work import unit_of_work
from quart_tasks.users.queries import create_user
from quart_tasks.web.errors import APIError

logger = logging.getLogger(__name__)


async def ensure_bootstrap_admin(
    engine: AsyncEngine, passwords: Passwords, config: Mapping[str, Any]
) -> bool:
    """Create the `API_USER` admin if no user has that name; True if it was created."""
    async with async_sessionmaker(engine, expire_on_commit=False)() as session:
        if await find_user(session, config["API_USER"]) is not None:
            return False
        password_hash = await passwords.hash(config["API_PASS"])
        try:
            async with unit_of_work(session) as work:
                await create_user(
                    work.session,
                    username=config["API_USER"],
                    password_hash=password_hash,
                    role="admin",
                )
        except APIError:  # another worker created it first
            return False
    logger.info("created the admin account %r", config["API_USER"])
    return True

"""Failed logins, counted per username and per client address.

The counters live in Redis when `REDIS_URL` is set, so every instance and
worker shares them, and in process otherwise. Only failures count: a client
that logs in correctly is never slowed down by its own successes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter

from quart_tasks.web.errors import APIError
from quart_tasks.web.rate_limits import rate_limited, seconds_until

logger = logging.getLogger(__name__)


class LoginThrottle:
    def __init__(
        self, storage: Storage, per_username: RateLimitItem, per_address: RateLimitItem
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._limits = (("username", per_username), ("address", per_address))

    async def check(self, username_key: str, address: str) -> None:
        """Raise 429 with `Retry-After` when either counter is spent."""
        try:
            for (kind, item), value in zip(self._limits, (username_key, address), strict=True):
                if not await self._limiter.test(item, "login", kind, value):
                    stats = await self._limiter.get_window_stats(item, "login", kind, value)
                    retry_after = seconds_until(stats.reset_time)
                    raise rate_limited("Too many failed logins; try again later", retry_after)
        except APIError:
            raise
        except Exception:  # the counters' store is down: let logins through, loudly
            logger.exception("login throttle unavailable; not limiting")

    async def record_failure(self, username_key: str, address: str) -> None:
        try:
            for (kind, item), value in zip(self._limits, (username_key, address), strict=True):
                await self._limiter.hit(item, "login", kind, value)
        except Exception:
            logger.exception("login throttle unavailable; failure not counted")


def login_throttle_for(config: Mapping[str, Any], storage: Storage) -> LoginThrottle:
    return LoginThrottle(
        storage,
        per_username=parse(config["LOGIN_FAILURES_PER_USERNAME"]),
        per_address=parse(config["LOGIN_FAILURES_PER_ADDRESS"]),
    )

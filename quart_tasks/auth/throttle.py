"""Failed logins, counted three ways so that no one can lock another person out.

After the OWASP Authentication Cheat Sheet:

- **per username and address**, tightly (`LOGIN_FAILURES_PER_PAIR`): past it,
  that address may not try that username until the window frees (429 with
  `Retry-After`). A successful login clears the pair.
- **per address**, loosely (`LOGIN_FAILURES_PER_ADDRESS`): an address that
  sprays passwords over many usernames is refused, while the people behind
  one NAT address who mistype now and then are not.
- **per username, across addresses**: never refused, only slowed. Past
  `LOGIN_FAILURES_PER_USERNAME`, every attempt on that username first waits a
  delay that doubles with each further failure, up to `LOGIN_DELAY_MAX_SECONDS`:
  a guesser spread over many addresses gets a few tries a minute, and the
  account's owner still logs in, a few seconds late at worst.

The counters live in Redis when `REDIS_URL` is set, so every instance and
worker shares them, and in process otherwise. Only failures count.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import Storage
from limits.aio.strategies import MovingWindowRateLimiter

from quart_tasks.web.errors import APIError
from quart_tasks.web.rate_limits import rate_limited, seconds_until

logger = logging.getLogger(__name__)

FIRST_DELAY_SECONDS = 0.5
"""The wait of the first attempt past the username's threshold; each failure doubles it."""
COUNTED_PAST_THRESHOLD = 64
"""How many failures past the threshold are counted: the delay has reached its cap long
before."""


class LoginThrottle:
    def __init__(
        self,
        storage: Storage,
        *,
        per_pair: RateLimitItem,
        per_address: RateLimitItem,
        per_username: RateLimitItem,
        max_delay: float,
        wait: Callable[[float], Awaitable[None]] = asyncio.sleep,
    ) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._per_pair = per_pair
        self._per_address = per_address
        self._username_threshold = per_username.amount
        # The same window, counting on past the threshold: the delay grows with the excess.
        self._per_username = type(per_username)(
            per_username.amount + COUNTED_PAST_THRESHOLD,
            per_username.multiples,
            per_username.namespace,
        )
        self._max_delay = max_delay
        self.wait = wait

    async def check(self, username_key: str, address: str) -> None:
        """Raise 429 with `Retry-After` when the pair's or the address's counter is spent;
        otherwise wait as long as the username's failures ask."""
        try:
            await self._refuse_if_spent(self._per_pair, "pair", username_key, address)
            await self._refuse_if_spent(self._per_address, "address", address)
            delay = await self.delay_for(username_key)
        except APIError:
            raise
        except Exception:  # the counters' store is down: let logins through, loudly
            logger.exception("login throttle unavailable; not limiting")
            return
        if delay > 0:
            await self.wait(delay)

    async def delay_for(self, username_key: str) -> float:
        """How long an attempt on `username_key` waits now, in seconds."""
        stats = await self._limiter.get_window_stats(
            self._per_username, "login", "username", username_key
        )
        failures = self._per_username.amount - stats.remaining
        excess = failures - self._username_threshold
        if excess < 0:
            return 0.0
        return float(min(self._max_delay, FIRST_DELAY_SECONDS * 2**excess))

    async def record_failure(self, username_key: str, address: str) -> None:
        try:
            await self._limiter.hit(self._per_pair, "login", "pair", username_key, address)
            await self._limiter.hit(self._per_address, "login", "address", address)
            await self._limiter.hit(self._per_username, "login", "username", username_key)
        except Exception:
            logger.exception("login throttle unavailable; failure not counted")

    async def record_success(self, username_key: str, address: str) -> None:
        """The pair's failures are forgotten: its owner has shown they know the password."""
        try:
            await self._limiter.clear(self._per_pair, "login", "pair", username_key, address)
        except Exception:
            logger.exception("login throttle unavailable; pair not cleared")

    async def _refuse_if_spent(self, item: RateLimitItem, *identifiers: str) -> None:
        if not await self._limiter.test(item, "login", *identifiers):
            stats = await self._limiter.get_window_stats(item, "login", *identifiers)
            raise rate_limited(
                "Too many failed logins; try again later", seconds_until(stats.reset_time)
            )


def login_throttle_for(config: Mapping[str, Any], storage: Storage) -> LoginThrottle:
    return LoginThrottle(
        storage,
        per_pair=parse(config["LOGIN_FAILURES_PER_PAIR"]),
        per_address=parse(config["LOGIN_FAILURES_PER_ADDRESS"]),
        per_username=parse(config["LOGIN_FAILURES_PER_USERNAME"]),
        max_delay=config["LOGIN_DELAY_MAX_SECONDS"],
    )

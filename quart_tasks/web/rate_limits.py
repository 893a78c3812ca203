"""Rate-limit counters (Redis when `REDIS_URL` is set, else in process) and the API-wide limit.

`RATE_LIMIT` (for example `100/second`, off when empty) caps each user's
authenticated requests; every answer to them carries `RateLimit-*` headers,
and one over the limit is 429 with `Retry-After`.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Mapping
from typing import Any

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from quart import Quart, Response, g

from quart_tasks.web.errors import APIError
from quart_tasks.web.shared_counters import SharedOrLocalStorage

logger = logging.getLogger(__name__)


def create_storage(config: Mapping[str, Any]) -> Storage:
    """Redis's counters when `REDIS_URL` is set (this process's while Redis is away),
    else this process's."""
    redis_url = config["REDIS_URL"]
    if not redis_url:
        return MemoryStorage()
    timeout = config["REDIS_TIMEOUT"]
    shared = RedisStorage(
        f"async+{redis_url}",
        key_prefix=str(config["RATE_LIMIT_KEY_PREFIX"]),
        stream_timeout=timeout,
        connect_timeout=timeout,
    )
    return SharedOrLocalStorage(shared)


def seconds_until(reset_time: float) -> int:
    return max(1, math.ceil(reset_time - time.time()))


def rate_limited(message: str, retry_after: int) -> APIError:
    return APIError(429, "rate_limited", message, headers={"Retry-After": str(retry_after)})


class ApiRateLimit:
    def __init__(self, storage: Storage, limit: RateLimitItem) -> None:
        self._limiter = MovingWindowRateLimiter(storage)
        self._limit = limit

    async def spend(self, user_id: int) -> None:
        """Count one request of `user_id`; 429 once the window is spent."""
        try:
            allowed = await self._limiter.hit(self._limit, "api", str(user_id))
            stats = await self._limiter.get_window_stats(self._limit, "api", str(user_id))
        except Exception:  # the counters' store is down: serve, loudly
            logger.exception("rate limit store unavailable; not limiting")
            return
        reset = seconds_until(stats.reset_time)
        g.rate_limit_headers = {
            "RateLimit-Limit": str(self._limit.amount),
            "RateLimit-Remaining": str(stats.remaining),
            "RateLimit-Reset": str(reset),
        }
        if not allowed:
            raise rate_limited("Too many requests; slow down", reset)


def api_rate_limit_for(config: Mapping[str, Any], storage: Storage) -> ApiRateLimit | None:
    """The limit `RATE_LIMIT` sets on each user's requests; None when it is empty."""
    return ApiRateLimit(storage, parse(config["RATE_LIMIT"])) if config["RATE_LIMIT"] else None


def init_rate_limit_headers(app: Quart) -> None:
    if app.config["RATE_LIMIT"]:
        app.after_request(_rate_limit_headers)


async def _rate_limit_headers(response: Response) -> Response:
    response.headers.update(g.get("rate_limit_headers", {}))
    return response

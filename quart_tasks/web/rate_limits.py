"""Rate-limit counters (Redis when `REDIS_URL` is set, else in process) and the API-wide limit.

`RATE_LIMIT` (for example `100/second`, off when empty) caps each user's
authenticated requests; every answer to them carries `RateLimit-*` headers,
and one over the limit is 429 with `Retry-After`.
"""

from __future__ import annotations

import logging
import math
import time

from limits import RateLimitItem, parse
from limits.aio.storage import MemoryStorage, RedisStorage, Storage
from limits.aio.strategies import MovingWindowRateLimiter
from quart import Quart, Response, current_app, g

from quart_tasks.web.errors import APIError

logger = logging.getLogger(__name__)


def create_storage(config: dict[str, object]) -> Storage:
    redis_url = config["REDIS_URL"]
    if redis_url:
        return RedisStorage(f"async+{redis_url}", key_prefix=str(config["RATE_LIMIT_KEY_PREFIX"]))
    return MemoryStorage()


def init_rate_limit_storage(app: Quart) -> Storage:
    storage = create_storage(app.config)
    app.extensions["rate_limit_storage"] = storage
    return storage


def rate_limit_storage() -> Storage:
    storage: Storage = current_app.extensions["rate_limit_storage"]
    return storage


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


def init_api_rate_limit(app: Quart, storage: Storage) -> None:
    if not app.config["RATE_LIMIT"]:
        return
    app.extensions["api_rate_limit"] = ApiRateLimit(storage, parse(app.config["RATE_LIMIT"]))

    @app.after_request
    async def _rate_limit_headers(response: Response) -> Response:
        response.headers.update(g.get("rate_limit_headers", {}))
        return response


async def spend_api_rate_limit(user_id: int) -> None:
    limit: ApiRateLimit | None = current_app.extensions.get("api_rate_limit")
    if limit is not None:
        await limit.spend(user_id)

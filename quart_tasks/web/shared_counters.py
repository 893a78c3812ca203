"""Rate-limit counters shared through Redis, and this process's own while Redis is away.

Redis only holds the limits' counters, so an instance can serve without it: the
limits then count per process (each worker allows the limit on its own, so
together a little more), rather than not at all, and go back to the shared
counters once Redis answers again. Each switch is logged once, and the
metrics show it (`quart_tasks_rate_limits_local`, `..._fallbacks_total`).
While away, Redis is tried again every `RETRY_SECONDS`, by the call that
comes first after that.
"""

from __future__ import annotations

import logging
import time
from typing import Any

from limits.aio.storage import MemoryStorage, MovingWindowSupport, Storage

from quart_tasks.web.metrics import RATE_LIMIT_FALLBACKS, RATE_LIMITS_LOCAL

logger = logging.getLogger(__name__)
RETRY_SECONDS = 5.0


class SharedOrLocalStorage(Storage, MovingWindowSupport):
    STORAGE_SCHEME = None

    def __init__(self, shared: Storage) -> None:
        super().__init__()
        self.shared = shared
        self.local = MemoryStorage()
        self.away_since: float | None = None
        """When Redis stopped answering (monotonic), or None while it answers."""
        self.next_try = 0.0
        exceptions = shared.base_exceptions
        self.shared_failures: tuple[type[BaseException], ...] = (
            *(exceptions if isinstance(exceptions, tuple) else (exceptions,)),
            OSError,
            TimeoutError,
        )

    @property
    def base_exceptions(self) -> tuple[type[Exception], ...]:
        return ()  # the shared store's are handled here; the local store raises none

    @property
    def local_only(self) -> bool:
        return self.away_since is not None

    async def _call(self, method: str, *args: Any) -> Any:
        if self.away_since is None or time.monotonic() >= self.next_try:
            try:
                result = await getattr(self.shared, method)(*args)
            except self.shared_failures as error:
                self._away(error)
            else:
                self._back()
                return result
        return await getattr(self.local, method)(*args)

    def _away(self, error: BaseException) -> None:
        self.next_try = time.monotonic() + RETRY_SECONDS
        if self.away_since is not None:
            return
        self.away_since = time.monotonic()
        RATE_LIMIT_FALLBACKS.inc()
        RATE_LIMITS_LOCAL.set(1)
        logger.warning(
            "rate limit counters unreachable (%s): counting in this process until they answer",
            type(error).__name__,
        )

    def _back(self) -> None:
        if self.away_since is None:
            return
        away = time.monotonic() - self.away_since
        self.away_since = None
        RATE_LIMITS_LOCAL.set(0)
        logger.warning("rate limit counters answer again after %.0f s: counting shared", away)

    async def incr(self, key: str, expiry: int, amount: int = 1) -> int:
        found: int = await self._call("incr", key, expiry, amount)
        return found

    async def get(self, key: str) -> int:
        found: int = await self._call("get", key)
        return found

    async def get_expiry(self, key: str) -> float:
        found: float = await self._call("get_expiry", key)
        return found

    async def check(self) -> bool:
        """Whether the shared store answers (the local one always does)."""
        try:
            return bool(await self.shared.check())
        except self.shared_failures:
            return False

    async def reset(self) -> int | None:
        found: int | None = await self._call("reset")
        return found

    async def clear(self, key: str) -> None:
        await self._call("clear", key)

    async def acquire_entry(self, key: str, limit: int, expiry: int, amount: int = 1) -> bool:
        found: bool = await self._call("acquire_entry", key, limit, expiry, amount)
        return found

    async def get_moving_window(self, key: str, limit: int, expiry: int) -> tuple[float, int]:
        found: tuple[float, int] = await self._call("get_moving_window", key, limit, expiry)
        return found

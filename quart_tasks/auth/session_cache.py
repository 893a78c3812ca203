"""Verified login sessions, remembered for a few seconds per process.

Every authenticated request would otherwise ask the database whether its
token's user and session still exist. A hit skips that query; the token's
signature, issuer and expiry are still checked on every request. Revocation
(logout, a reused refresh token) forgets the session at once in the process
that revoked it; other processes notice within `AUTH_CACHE_SECONDS`, as they
do a deleted user. `AUTH_CACHE_SECONDS=0` turns the cache off.

An entry past half its life is renewed by the next request that asks for it,
which checks the database as on a miss, while every other request goes on
using the entry until it expires. Under steady traffic an entry never lapses:
were it left to expire, every request of that moment would miss together
(hundreds, at 512 connections) and queue behind one another's checks. A
renewer that does not come back with an answer (its check failed, or its
client left) hands the renewal on to the next request after
`RENEWAL_RETRY_SECONDS`.

A request that misses while a check of the same session is under way waits
for that check's answer instead of asking again (`SessionCache.value`). Under
load a renewal waits its turn for a pooled connection behind every request
queued before it; at 512 connections that can outlast the entry, and every
request of the moment then ran the same check (a second query each, on the
slower session path), which halved the worker's throughput for a second or
more while its queue, and so the wait for the next renewal, grew. So a check
also takes its pooled connection ahead of the queue (`storage.pool.first_in_line`):
if it outwaited the entry, every request of that session would wait for it.
"""

from __future__ import annotations

import asyncio
import time
from collections import OrderedDict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

Value = TypeVar("Value")
MAX_ENTRIES = 10_000
RENEWAL_RETRY_SECONDS = 1.0
_NO_ANSWER = object()
"""What a check that failed or was cancelled hands those waiting on it: ask again."""


@dataclass(slots=True)
class _Entry(Generic[Value]):
    value: Value
    expires: float
    renew_from: float
    renewal_claimed: float | None = None


class SessionCache(Generic[Value]):
    def __init__(
        self,
        seconds: float,
        max_entries: int = MAX_ENTRIES,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self.clock = clock
        self._entries: OrderedDict[tuple[int, str], _Entry[Value]] = OrderedDict()
        self._checks: dict[tuple[int, str], asyncio.Future[object]] = {}

    async def value(
        self, user_id: int, family_id: str, check: Callable[[], Awaitable[Value | None]]
    ) -> Value | None:
        """The remembered value, or else what `check` finds (None: the session is gone).

        One check of a session runs at a time: whoever misses meanwhile waits
        for its answer. A check that ends without one (an error, a client that
        left) leaves each of them to ask again, one at a time as well.
        """
        if self.seconds <= 0:
            return await check()
        key = (user_id, family_id)
        while True:
            value = self.get(user_id, family_id)
            if value is not None:
                return value
            under_way = self._checks.get(key)
            if under_way is None:
                return await self._check(key, check)
            answer = await asyncio.shield(under_way)
            if answer is not _NO_ANSWER:
                return answer  # type: ignore[return-value]

    async def _check(
        self, key: tuple[int, str], check: Callable[[], Awaitable[Value | None]]
    ) -> Value | None:
        flight: asyncio.Future[object] = asyncio.get_running_loop().create_future()
        self._checks[key] = flight
        answer: object = _NO_ANSWER
        try:
            value = await check()
            answer = value
            # Unless the session was forgotten (revoked) while the check ran.
            if self._checks.get(key) is flight:
                if value is None:
                    self.forget(*key)
                else:
                    self.put(*key, value)
            return value
        finally:
            if self._checks.get(key) is flight:
                del self._checks[key]
            flight.set_result(answer)

    def get(self, user_id: int, family_id: str) -> Value | None:
        """The remembered value, or None: check the database, then `put` what it says.

        None on a miss, and for the one caller chosen to renew an entry past
        half its life.
        """
        key = (user_id, family_id)
        entry = self._entries.get(key)
        if entry is None:
            return None
        now = self.clock()
        if entry.expires <= now:
            del self._entries[key]
            return None
        if now >= entry.renew_from and (
            entry.renewal_claimed is None or now - entry.renewal_claimed >= RENEWAL_RETRY_SECONDS
        ):
            entry.renewal_claimed = now
            return None
        return entry.value

    def put(self, user_id: int, family_id: str, value: Value) -> None:
        if self.seconds <= 0:
            return
        key, now = (user_id, family_id), self.clock()
        self._entries[key] = _Entry(value, now + self.seconds, now + self.seconds / 2)
        self._entries.move_to_end(key)
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget(self, user_id: int, family_id: str) -> None:
        self._entries.pop((user_id, family_id), None)
        self._checks.pop((user_id, family_id), None)

    def forget_family(self, family_id: str) -> None:
        for key in [key for key in self._entries if key[1] == family_id]:
            del self._entries[key]
        for key in [key for key in self._checks if key[1] == family_id]:
            del self._checks[key]

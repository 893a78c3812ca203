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
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from quart import current_app

Value = TypeVar("Value")
MAX_ENTRIES = 10_000
RENEWAL_RETRY_SECONDS = 1.0


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

    def forget_family(self, family_id: str) -> None:
        for key in [key for key in self._entries if key[1] == family_id]:
            del self._entries[key]


def session_cache() -> SessionCache[object]:
    cache: SessionCache[object] = current_app.extensions["session_cache"]
    return cache

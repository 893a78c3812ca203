"""Verified login sessions, remembered for a few seconds per process.

Every authenticated request would otherwise ask the database whether its
token's user and session still exist. A hit skips that query; the token's
signature, issuer and expiry are still checked on every request. Revocation
(logout, a reused refresh token) forgets the session at once in the process
that revoked it; other processes notice within `AUTH_CACHE_SECONDS`, as they
do a deleted user. `AUTH_CACHE_SECONDS=0` turns the cache off.
"""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Generic, TypeVar

from quart import current_app

Value = TypeVar("Value")
MAX_ENTRIES = 10_000


class SessionCache(Generic[Value]):
    def __init__(self, seconds: float, max_entries: int = MAX_ENTRIES) -> None:
        self.seconds = seconds
        self.max_entries = max_entries
        self._entries: OrderedDict[tuple[int, str], tuple[float, Value]] = OrderedDict()

    def get(self, user_id: int, family_id: str) -> Value | None:
        entry = self._entries.get((user_id, family_id))
        if entry is None:
            return None
        expires, value = entry
        if expires <= time.monotonic():
            del self._entries[(user_id, family_id)]
            return None
        return value

    def put(self, user_id: int, family_id: str, value: Value) -> None:
        if self.seconds <= 0:
            return
        self._entries[(user_id, family_id)] = (time.monotonic() + self.seconds, value)
        self._entries.move_to_end((user_id, family_id))
        while len(self._entries) > self.max_entries:
            self._entries.popitem(last=False)

    def forget_family(self, family_id: str) -> None:
        for key in [key for key in self._entries if key[1] == family_id]:
            del self._entries[key]


def session_cache() -> SessionCache[object]:
    cache: SessionCache[object] = current_app.extensions["session_cache"]
    return cache

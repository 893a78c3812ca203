"""argon2id password hashing, run on a thread pool of its own so it never stalls the loop."""

from __future__ import annotations

import asyncio
import os
from collections.abc import Callable, Mapping
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

T = TypeVar("T")

MIN_PASSWORD_LENGTH = 8
MAX_PASSWORD_LENGTH = 1024


class Passwords:
    """Hashes and verifies passwords off the event loop.

    argon2-cffi releases the GIL while hashing, so a pool as wide as the
    machine hashes in parallel; its own pool keeps a burst of logins from
    queueing ahead of other work on the loop's default executor.
    """

    def __init__(self, *, time_cost: int, memory_kib: int, parallelism: int) -> None:
        self._hasher = PasswordHasher(
            time_cost=time_cost, memory_cost=memory_kib, parallelism=parallelism
        )
        self._executor: ThreadPoolExecutor | None = None
        self._dummy_hash: str | None = None

    async def hash(self, password: str) -> str:
        return await self._run(self._hasher.hash, password)

    async def verify(self, password_hash: str | None, password: str) -> bool:
        """Whether `password` matches; with no hash, as slow as a real check, and False."""
        if password_hash is None:
            if self._dummy_hash is None:
                self._dummy_hash = await self.hash("no such user: timing stays the same")
            password_hash = self._dummy_hash
            await self._run(self._verify, password_hash, password)
            return False
        return await self._run(self._verify, password_hash, password)

    def needs_rehash(self, password_hash: str) -> bool:
        return self._hasher.check_needs_rehash(password_hash)

    def close(self) -> None:
        if self._executor is not None:
            self._executor.shutdown(wait=False, cancel_futures=True)
            self._executor = None

    def _verify(self, password_hash: str, password: str) -> bool:
        try:
            return self._hasher.verify(password_hash, password)
        except (VerificationError, InvalidHashError):
            return False

    async def _run(self, func: Callable[..., T], *args: str) -> T:
        if self._executor is None:
            self._executor = ThreadPoolExecutor(
                max_workers=os.cpu_count() or 2, thread_name_prefix="argon2"
            )
        return await asyncio.get_running_loop().run_in_executor(self._executor, func, *args)


def passwords_for(config: Mapping[str, Any]) -> Passwords:
    return Passwords(
        time_cost=config["ARGON2_TIME_COST"],
        memory_kib=config["ARGON2_MEMORY_KIB"],
        parallelism=config["ARGON2_PARALLELISM"],
    )

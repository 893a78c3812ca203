"""A connection pool whose waiters are served in the order they came.

SQLAlchemy's asyncio pool queues its free connections in an `asyncio.Queue`.
A connection handed back wakes the first waiter, but a request that asks in
the meantime takes it first, and the woken waiter queues again at the back.
Under sustained load some requests then wait for seconds while others never
wait at all. Here a returned connection goes straight to the longest waiter,
so a request's wait depends only on how many came before it.

One kind of checkout goes to the front of the line (`first_in_line`): a check
that many queued requests wait on, such as a login session's renewal (see
`auth.session_cache`). At 512 connections the line is hundreds deep and a
renewal at its back could outwait the entry it renews, stalling every request
of that session until it came back.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import TypeVar

from sqlalchemy.pool import AsyncAdaptedQueuePool, ConnectionPoolEntry
from sqlalchemy.util import await_only
from sqlalchemy.util.queue import Empty, Full, QueueCommon

Item = TypeVar("Item")
_FIRST_IN_LINE: ContextVar[bool] = ContextVar("first_in_line", default=False)


@contextmanager
def first_in_line() -> Iterator[None]:
    """A pooled connection asked for inside goes to this task before any already waiting."""
    token = _FIRST_IN_LINE.set(True)
    try:
        yield
    finally:
        _FIRST_IN_LINE.reset(token)


class FairQueue(QueueCommon[Item]):
    def __init__(self, maxsize: int = 0, use_lifo: bool = False) -> None:
        self.maxsize = maxsize
        self.use_lifo = use_lifo
        self._items: deque[Item] = deque()
        self._waiters: deque[asyncio.Future[Item]] = deque()

    def empty(self) -> bool:
        return not self._items

    def full(self) -> bool:
        return 0 < self.maxsize <= len(self._items)

    def qsize(self) -> int:
        return len(self._items)

    def put_nowait(self, item: Item) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(item)
                return
        if self.full():
            raise Full()
        self._items.append(item)

    def put(self, item: Item, block: bool = True, timeout: float | None = None) -> None:
        """Never blocks: the pool only puts back what it took, so there is always room."""
        self.put_nowait(item)

    def get_nowait(self) -> Item:
        if not self._items:
            raise Empty()
        return self._items.pop() if self.use_lifo else self._items.popleft()

    def get(self, block: bool = True, timeout: float | None = None) -> Item:
        if self._items or not block:
            return self.get_nowait()
        return await_only(self._wait_for_item(timeout))

    async def _wait_for_item(self, seconds: float | None) -> Item:
        waiter: asyncio.Future[Item] = asyncio.get_running_loop().create_future()
        if _FIRST_IN_LINE.get():
            self._waiters.appendleft(waiter)
        else:
            self._waiters.append(waiter)
        try:
            async with asyncio.timeout(seconds):
                return await waiter
        except BaseException as error:
            if not waiter.done():
                self._waiters.remove(waiter)
            elif not waiter.cancelled():
                # Handed a connection just as the wait ended: pass it on, not lose it.
                self.put_nowait(waiter.result())
            if isinstance(error, TimeoutError):
                raise Empty() from None
            raise


class FairAsyncQueuePool(AsyncAdaptedQueuePool):
    _queue_class: type[QueueCommon[ConnectionPoolEntry]] = FairQueue

"""A keep-alive connection's idle timeout as a timer, not as tasks.

Hypercorn 0.18 watches an idle connection with a task (`AsyncioSingleTask`)
that runs `asyncio.wait_for` on the worker's termination, itself a second
task: both are made after every response and cancelled when the next request
arrives, and that request is not read on until the cancelled tasks have
finished, a turn or two of the event loop later (at 512 connections a turn
takes about 10 ms). `IdleTimer` does the same work with one timer handle:
scheduled when the connection falls idle, cancelled when a request comes.

Idle connections still close at once when the worker stops: one task per
worker waits for that and closes every connection idle at the time.
"""

from __future__ import annotations

import asyncio
import contextlib
import weakref
from collections.abc import Callable
from typing import Any

from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext

_idle_by_worker: weakref.WeakKeyDictionary[WorkerContext, set[IdleTimer]] = (
    weakref.WeakKeyDictionary()
)
_watchers: set[asyncio.Task[None]] = set()


class IdleTimer:
    """Stands in for a `TCPServer`'s `idle_task`: `restart` when the connection falls
    idle, `stop` when a request arrives or the connection ends."""

    def __init__(self, server: TCPServer) -> None:
        self._server = server
        self._handle: asyncio.TimerHandle | None = None
        self._task_group: TaskGroup | None = None

    async def restart(self, task_group: TaskGroup, _action: Callable[[], Any]) -> None:
        self._cancel()
        self._task_group = task_group
        if self._server.context.terminated.is_set():
            self.expire()
            return
        self._handle = self._server.loop.call_later(
            self._server.config.keep_alive_timeout, self.expire
        )
        _idle_connections(self._server.context).add(self)

    async def stop(self) -> None:
        self._cancel()

    def expire(self) -> None:
        """Close the connection, as Hypercorn's idle task does when its time is up."""
        self._cancel()
        # RuntimeError: the task group has ended, and the connection is closing already.
        if self._task_group is not None:
            with contextlib.suppress(RuntimeError):
                self._task_group.spawn(self._server._initiate_server_close)

    def _cancel(self) -> None:
        if self._handle is not None:
            self._handle.cancel()
            self._handle = None
            _idle_connections(self._server.context).discard(self)


def _idle_connections(context: WorkerContext) -> set[IdleTimer]:
    idle = _idle_by_worker.get(context)
    if idle is None:
        idle = _idle_by_worker[context] = set()
        watcher = asyncio.get_running_loop().create_task(_close_idle_on_termination(context))
        _watchers.add(watcher)
        watcher.add_done_callback(_watchers.discard)
    return idle


async def _close_idle_on_termination(context: WorkerContext) -> None:
    await context.terminated.wait()
    for timer in list(_idle_by_worker.get(context, ())):
        timer.expire()

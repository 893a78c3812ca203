"""A Hypercorn protocol on one pretend connection, for tests of what it writes."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.events import Closed, Event
from hypercorn.typing import ConnectionState

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]


@asynccontextmanager
async def protocol_on(
    app: ASGIApp,
    protocol_class: type,
    send: Callable[[Event], Awaitable[None]],
    context: WorkerContext | None = None,
) -> AsyncIterator[Any]:
    """`protocol_class` serving `app` on a cleartext connection whose writes go to `send`;
    the connection is closed after."""
    task_group = TaskGroup(asyncio.get_running_loop())
    async with task_group:
        protocol = protocol_class(
            ASGIWrapper(app),  # type: ignore[arg-type]
            Config(),
            context or WorkerContext(None),
            task_group,
            ConnectionState({}),
            False,
            ("127.0.0.1", 50000),
            ("127.0.0.1", 8000),
            send,
        )
        yield protocol
        await protocol.handle(Closed())

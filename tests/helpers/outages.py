"""The local PostgreSQL cluster, stopped and started under a test, and waiting for it; an
engine that refuses connections as a server shutting down does."""

from __future__ import annotations

import asyncio
import contextlib
import os
import shutil
import subprocess
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import asyncpg

from tests.helpers.servers import postgres_database, postgres_up
from tests.helpers.support import require


def cluster(action: str) -> None:
    version = sorted(os.listdir("/etc/postgresql"))[-1]
    subprocess.run(
        [
            "pg_ctlcluster",
            "--skip-systemctl-redirect",
            version,
            "main",
            action,
            *(["-m", "fast"] if action == "stop" else []),
        ],
        check=True,
        capture_output=True,
        timeout=60,
    )


async def wait_for(predicate: Callable[[], Awaitable[bool]]) -> None:
    """Poll `predicate` for up to 30 s: the cluster gives no event to wait on."""
    for _ in range(150):
        if await predicate():
            return
        await asyncio.sleep(0.2)
    raise TimeoutError("still not there after 30 s")


@contextlib.asynccontextmanager
async def outage_database() -> AsyncIterator[str]:
    """A throwaway PostgreSQL database on the local cluster, which the test may stop."""
    require(shutil.which("pg_ctlcluster") is not None, "pg_ctlcluster is not installed")
    require(os.geteuid() == 0, "stopping the PostgreSQL cluster needs root")
    async with postgres_database() as url:
        try:
            yield url
        finally:
            if not await postgres_up():  # a test that failed mid-outage must not leave it down
                await asyncio.to_thread(cluster, "start")
            await wait_for(postgres_up)


class RefusingConnections:
    """The engine as the asyncpg path sees it, while the server is shutting down."""

    def __init__(self, engine: Any) -> None:
        self.engine = engine

    def __getattr__(self, name: str) -> Any:
        return getattr(self.engine, name)

    async def raw_connection(self) -> Any:
        raise asyncpg.CannotConnectNowError("the database system is shutting down")

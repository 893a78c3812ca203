"""The LISTEN connection: reached as the pool's connections are, and woken by NOTIFY."""

from __future__ import annotations

import asyncio

import asyncpg

from quart_tasks.live.listener import listener_connect_args, postgres_listener
from quart_tasks.tasks.log.rounds import CHANNEL
from tests.helpers.servers import LOCAL_POSTGRES, postgres_database


def test_the_urls_query_options_reach_asyncpg_and_the_dialects_own_do_not() -> None:
    """A managed PostgreSQL is reached with `?ssl=require`; without it the listener
    alone would try in clear, be refused, and no event would reach a stream."""
    arguments = listener_connect_args(
        "postgresql+asyncpg://app:p%40ss@db.example:6543/tasks"
        "?ssl=require&prepared_statement_cache_size=0",
        connect_timeout=5,
    )
    assert arguments == {
        "host": "db.example",
        "port": 6543,
        "user": "app",
        "password": "p@ss",
        "database": "tasks",
        "ssl": "require",
        "timeout": 5,
    }


def test_a_socket_directory_given_as_host_in_the_query_is_kept() -> None:
    arguments = listener_connect_args(
        "postgresql+asyncpg://app@/tasks?host=/var/run/postgresql", connect_timeout=5
    )
    assert arguments["host"] == "/var/run/postgresql"
    assert arguments["database"] == "tasks"


async def test_the_listener_wakes_on_connecting_and_on_each_notification() -> None:
    async with postgres_database() as url:
        woken = asyncio.Event()
        listening = asyncio.create_task(postgres_listener(url + "?ssl=disable", 5)(woken.set))
        try:
            await asyncio.wait_for(woken.wait(), 10)  # once connected: the broker back-fills
            woken.clear()
            database = url.rsplit("/", 1)[1]
            notifier = await asyncpg.connect(**LOCAL_POSTGRES, database=database)
            try:
                await notifier.execute(f"NOTIFY {CHANNEL}")
            finally:
                await notifier.close()
            await asyncio.wait_for(woken.wait(), 10)
        finally:
            listening.cancel()
            await asyncio.gather(listening, return_exceptions=True)

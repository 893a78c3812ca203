"""Live changes: the streams that read the event log every task change writes (`tasks.log`)."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from quart import Quart
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.live.broker import Broker
from quart_tasks.live.listener import postgres_listener
from quart_tasks.live.routes import live
from quart_tasks.services import services_of
from quart_tasks.serving.lifecycle import on_draining
from quart_tasks.storage.dialects import is_postgresql
from quart_tasks.storage.sessions import Database
from quart_tasks.tasks.log.sequencer import Sequencer
from quart_tasks.tasks.log.signals import events_positioned

__all__ = ["LiveStreams", "live"]


class LiveStreams:
    """The process's broker, and what ties it to the process while the app serves:
    a worker told to stop ends the streams, and this process's rounds wake it."""

    def __init__(self, config: Mapping[str, Any], database: Database, sequencer: Sequencer) -> None:
        def new_session() -> AsyncSession:
            # The broker and the streams only read the log: on PostgreSQL, in autocommit.
            if database.read_sessionmaker is None:
                raise RuntimeError("the database is not connected")
            return database.read_sessionmaker()

        listener = None
        if is_postgresql(config["DATABASE_URL"]):
            # LISTEN holds a session of its own: behind a transaction-mode pooler it needs
            # a direct connection (EVENTS_LISTEN_URL); without one it would hear nothing,
            # and changes would reach streams only with the poll.
            listen_url = config["EVENTS_LISTEN_URL"] or config["DATABASE_URL"]
            listener = postgres_listener(listen_url, config["DB_CONNECT_TIMEOUT"])
        self.broker = Broker(
            new_session,
            queue_size=config["EVENTS_QUEUE_SIZE"],
            poll_seconds=config["EVENTS_POLL_SECONDS"],
            heartbeat_seconds=config["EVENTS_HEARTBEAT_SECONDS"],
            backlog_limit=config["EVENTS_BACKLOG_BYTES"],
            listener=listener,
            sequence=sequencer.take_round,
        )
        self.direct_writes: bool = config["EVENTS_DIRECT_WRITES"]
        """Whether streams hand their connections to the broker (`serving.direct_streams`)."""
        self._forget_draining: Callable[[], None] | None = None

    async def start(self, app: Quart) -> None:
        self._forget_draining = on_draining(self.broker.end_streams)
        events_positioned.connect(_wake_broker, sender=app)

    async def stop(self, app: Quart) -> None:
        """End every stream and stop reading: before the database's engine goes."""
        if self._forget_draining is not None:
            self._forget_draining()
        events_positioned.disconnect(_wake_broker, sender=app)
        await self.broker.close()


def _wake_broker(app: Quart) -> None:
    """Events this process positioned reach its subscribers without waiting for a poll."""
    services_of(app).live.broker.wake()

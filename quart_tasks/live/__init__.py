"""Live changes: the streams that read the event log every task change writes (`tasks.events`)."""

from __future__ import annotations

from quart import Quart
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.live.broker import Broker
from quart_tasks.live.listener import postgres_listener
from quart_tasks.live.routes import live
from quart_tasks.serving.lifecycle import on_draining
from quart_tasks.tasks.events import events_committed

__all__ = ["init_live", "live"]


def init_live(app: Quart) -> None:
    """The per-process broker: created before serving, closed (streams ended) after.

    Register before the database, so that at shutdown the broker stops reading
    before the engine is disposed.
    """

    async def start() -> None:
        config = app.config

        def new_session() -> AsyncSession:
            # The broker and the streams only read the log: on PostgreSQL, in autocommit.
            sessionmaker = app.extensions["database"].read_sessionmaker
            if sessionmaker is None:
                raise RuntimeError("the database is not connected")
            session: AsyncSession = sessionmaker()
            return session

        url = make_url(config["DATABASE_URL"])
        listener = None
        if url.get_backend_name() == "postgresql":
            listener = postgres_listener(config["DATABASE_URL"], config["DB_CONNECT_TIMEOUT"])
        broker = Broker(
            new_session,
            queue_size=config["EVENTS_QUEUE_SIZE"],
            poll_seconds=config["EVENTS_POLL_SECONDS"],
            heartbeat_seconds=config["EVENTS_HEARTBEAT_SECONDS"],
            listener=listener,
        )
        app.extensions["live_broker"] = broker
        app.extensions["live_forget_draining"] = on_draining(broker.end_streams)
        events_committed.connect(_wake_broker, sender=app)

    async def stop() -> None:
        app.extensions.pop("live_forget_draining", lambda: None)()
        broker: Broker | None = app.extensions.pop("live_broker", None)
        if broker is not None:
            events_committed.disconnect(_wake_broker, sender=app)
            await broker.close()

    app.before_serving(start)
    app.after_serving(stop)


def _wake_broker(app: Quart) -> None:
    """This process's own commits reach its subscribers without waiting for a poll."""
    broker: Broker | None = app.extensions.get("live_broker")
    if broker is not None:
        broker.wake()

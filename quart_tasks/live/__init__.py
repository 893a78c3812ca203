"""Live changes: the event log written with every task change, and the streams that read it."""

from __future__ import annotations

from quart import Quart
from sqlalchemy import event as sqlalchemy_event
from sqlalchemy import make_url
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session

from ..lifecycle import on_draining
from .broker import Broker
from .listener import postgres_listener
from .log import WRITTEN_FLAG, wake_local_broker
from .routes import live

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

    async def stop() -> None:
        app.extensions.pop("live_forget_draining", lambda: None)()
        broker: Broker | None = app.extensions.pop("live_broker", None)
        if broker is not None:
            await broker.close()

    app.before_serving(start)
    app.after_serving(stop)


@sqlalchemy_event.listens_for(Session, "after_commit")
def _wake_after_commit(session: Session) -> None:
    """This process's own commits reach its subscribers without waiting for a poll."""
    if session.info.pop(WRITTEN_FLAG, False):
        wake_local_broker()


@sqlalchemy_event.listens_for(Session, "after_soft_rollback")
def _forget_rolled_back(session: Session, _previous: object) -> None:
    session.info.pop(WRITTEN_FLAG, None)

"""Hypercorn's uvloop worker, accepting new connections as `accepting.AcceptShare` allows.

uvloop hands a listening socket to libuv, which accepts every connection
waiting each time the socket is ready, past Python's `socket.accept`: the
first worker to wake took a whole burst, and at 512 connections some clients
waited twice the mean. Here the event loop's `create_server` gives a
`SharedListener` a server of its own: a reader on the listening socket that
accepts through the listener (so by the share's rule) and hands each
connection to uvloop's transports with `connect_accepted_socket`.

libuv closes an accepted socket itself, never through the Python object, so a
connection is counted off when its protocol is told it was lost (`CountedProtocol`).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import ssl
from collections.abc import Callable
from functools import partial
from typing import Any

import uvloop
from hypercorn.asyncio.run import _run, worker_serve
from hypercorn.config import Config, Sockets
from hypercorn.utils import check_multiprocess_shutdown_event, load_application

from quart_tasks.logs import LOGGER_NAME
from quart_tasks.serving.accepting import MAX_ACCEPTS_PER_TURN, CountedConnection, SharedListener

logger = logging.getLogger(f"{LOGGER_NAME}.server")

ACCEPT_RETRY_DELAY = 1.0
"""Out of file descriptors or memory: accepting pauses this long, as asyncio's does."""
OUT_OF_RESOURCES = (errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM)


class SharedListenerServer:
    """What `create_server` gives for a `SharedListener`: the parts of
    `asyncio.Server` Hypercorn uses (`close`, `wait_closed`)."""

    def __init__(
        self,
        loop: asyncio.AbstractEventLoop,
        listener: SharedListener,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        ssl_context: ssl.SSLContext | None,
        ssl_handshake_timeout: float | None,
    ) -> None:
        self.loop = loop
        self.listener = listener
        self.protocol_factory = protocol_factory
        self.ssl_context = ssl_context
        self.ssl_handshake_timeout = ssl_handshake_timeout
        self.closed = False
        self.handovers: set[asyncio.Task[Any]] = set()
        listener.setblocking(False)
        listener.listen()  # as asyncio's create_server does: Hypercorn's sockets only bind
        self._start_reading()

    def close(self) -> None:
        if not self.closed:
            self.closed = True
            self.loop.remove_reader(self.listener.fileno())
            self.listener.close()

    async def wait_closed(self) -> None:
        return None

    def _start_reading(self) -> None:
        # A worker that is stopping has removed this reader and must not get it back.
        if not self.closed and not self.listener.share.stopped:
            self.loop.add_reader(self.listener.fileno(), self._accept_turn)

    def _accept_turn(self) -> None:
        for _ in range(MAX_ACCEPTS_PER_TURN):
            try:
                connection, _ = self.listener.accept()
            except (BlockingIOError, InterruptedError, ConnectionAbortedError):
                return  # none waiting, the share refused, or the client already left
            except OSError as error:
                if error.errno not in OUT_OF_RESOURCES:
                    raise
                logger.error("accepting paused for %.0f s: %s", ACCEPT_RETRY_DELAY, error)
                self.loop.remove_reader(self.listener.fileno())
                self.loop.call_later(ACCEPT_RETRY_DELAY, self._start_reading)
                return
            assert isinstance(connection, CountedConnection)
            connection.setblocking(False)
            handover = self.loop.create_task(self._hand_over(connection))
            self.handovers.add(handover)
            handover.add_done_callback(self.handovers.discard)

    async def _hand_over(self, connection: CountedConnection) -> None:
        try:
            protocol = CountedProtocol(self.protocol_factory(), connection)
        except Exception:
            connection.close()
            raise
        try:
            await self.loop.connect_accepted_socket(
                lambda: protocol,
                connection,
                ssl=self.ssl_context,
                ssl_handshake_timeout=self.ssl_handshake_timeout,
            )
        except Exception as error:  # a failed TLS handshake: uvloop has closed the socket
            connection.release()
            logger.debug("connection not set up: %r", error)


class CountedProtocol(asyncio.Protocol):
    """A connection's protocol, counting the connection off its worker's once it is lost."""

    def __init__(self, protocol: asyncio.BaseProtocol, connection: CountedConnection) -> None:
        self.protocol = protocol
        self.connection = connection

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self.protocol.connection_made(transport)

    def data_received(self, data: bytes) -> None:
        self.protocol.data_received(data)  # type: ignore[attr-defined]

    def eof_received(self) -> bool | None:
        return self.protocol.eof_received()  # type: ignore[attr-defined, no-any-return]

    def pause_writing(self) -> None:
        self.protocol.pause_writing()

    def resume_writing(self) -> None:
        self.protocol.resume_writing()

    def connection_lost(self, exc: Exception | None) -> None:
        self.connection.release()
        self.protocol.connection_lost(exc)


class SharingLoop(uvloop.Loop):
    """uvloop's loop, serving a `SharedListener` with a `SharedListenerServer`."""

    async def create_server(  # type: ignore[override]
        self,
        protocol_factory: Callable[[], asyncio.BaseProtocol],
        host: Any = None,
        port: Any = None,
        *,
        sock: Any = None,
        ssl: ssl.SSLContext | None = None,
        ssl_handshake_timeout: float | None = None,
        **options: Any,
    ) -> Any:
        if isinstance(sock, SharedListener):
            return SharedListenerServer(self, sock, protocol_factory, ssl, ssl_handshake_timeout)
        return await super().create_server(
            protocol_factory,
            host,
            port,
            sock=sock,
            ssl=ssl,
            ssl_handshake_timeout=ssl_handshake_timeout,
            **options,
        )


def uvloop_worker(config: Config, sockets: Sockets, shutdown_event: Any) -> None:
    """`hypercorn.asyncio.run.uvloop_worker`, on a `SharingLoop`; `shutdown_event` is
    anything with `is_set()`, polled as Hypercorn polls its multiprocessing event."""
    app = load_application(config.application_path, config.wsgi_max_body_size)
    shutdown_trigger = partial(check_multiprocess_shutdown_event, shutdown_event, asyncio.sleep)
    _run(
        partial(worker_serve, app, config, sockets=sockets),
        debug=config.debug,
        shutdown_trigger=shutdown_trigger,
        loop_factory=SharingLoop,
    )

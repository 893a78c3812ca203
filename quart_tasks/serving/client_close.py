"""How a worker's connections end: at once when the client has closed, after the
client has finished sending when the server closes first.

Hypercorn 0.18 reads a client's close (EOF) on a keep-alive connection and
ends its read loop, but the connection's idle timer may still be running, and
the connection's task group waits for it: the socket stays open, in
CLOSE-WAIT, with its task group and buffers, until `keep_alive_timeout` (75 s
by default here) runs out. Of 64 connections closed by their client right
after their responses, 37 stayed open so (measured with `ss`). Clients
that open a connection per burst of requests would pile up sockets against
the worker's file limit, and each worker would count connections it no longer
serves (see `accepting`). Stopping the idle timer once reading has ended lets
the connection close at once.

The other way round, an answer given before the request's body has arrived
(413 for a body declared too large) ends with `Connection: close`, and
Hypercorn closed the socket straight after writing it. A socket closed with
unread data in it is reset by the kernel, and a client still sending its body
met the reset before it could read the answer (one run in four of a 2 MiB
upload). So, as web servers do, the connection first only stops sending (a
half-close), reads and discards what the client still sends until it closes
in turn, and is closed after `LINGER_SECONDS` at most.
"""

from __future__ import annotations

import asyncio
import contextlib
import ssl

import h11
from hypercorn.asyncio.tcp_server import TCPServer

LINGER_SECONDS = 2.0


class PromptlyClosingTCPServer(TCPServer):
    _linger: asyncio.TimerHandle | None = None

    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()

    async def _close(self) -> None:
        if self._linger is None and self._request_body_unread():
            try:
                self.writer.write_eof()
            except (NotImplementedError, OSError, RuntimeError):
                pass  # TLS cannot half-close: closed at once, as before
            else:
                # The read loop goes on, its data dropped (the request has its answer),
                # and ends at the client's close, which closes the connection.
                self._linger = self.loop.call_later(LINGER_SECONDS, self.writer.close)
                return
        if self._linger is not None:
            self._linger.cancel()
        # A TLS client still sending after our close_notify: closed all the same.
        # Hypercorn lets this one out of the close, and the worker then exited with an
        # error at the end of its graceful shutdown.
        with contextlib.suppress(ssl.SSLError):
            await super()._close()

    def _request_body_unread(self) -> bool:
        connection = getattr(getattr(self, "protocol", None), "protocol", None)
        connection = getattr(connection, "connection", None)
        return (
            isinstance(connection, h11.Connection)
            and connection.their_state is h11.SEND_BODY
            and not self.reader.at_eof()
        )

"""Close a connection as soon as its client has closed it, not at the keep-alive timeout.

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
"""

from __future__ import annotations

import hypercorn.asyncio.run
from hypercorn.asyncio.tcp_server import TCPServer


class PromptlyClosingTCPServer(TCPServer):
    async def _read_data(self) -> None:
        await super()._read_data()
        await self.idle_task.stop()


def close_connections_promptly() -> None:
    """Have this process's Hypercorn worker serve connections with `PromptlyClosingTCPServer`."""
    hypercorn.asyncio.run.TCPServer = PromptlyClosingTCPServer  # type: ignore[attr-defined]

"""Client connections to a local port, closed when done."""

from __future__ import annotations

import contextlib
import socket
from collections.abc import Iterator


@contextlib.contextmanager
def connections_to(port: int, how_many: int) -> Iterator[list[socket.socket]]:
    clients = [socket.create_connection(("127.0.0.1", port), timeout=5) for _ in range(how_many)]
    try:
        yield clients
    finally:
        for client in clients:
            client.close()

"""How workers sharing one listening socket split new connections between them.

A keep-alive connection stays with the worker that accepted it for as long as
the client keeps it open, so the split decides each worker's share of the
work. asyncio accepts up to `backlog` connections each time a listener is
ready, and with every worker on one socket the first to wake took a whole
burst (64 of 64, measured) while its siblings idled. Accepting one connection
per turn of the event loop fixed the split but made a burst slow to take in:
under load a turn lasts milliseconds, and a connection waiting in the kernel's
queue has already sent its first request, which waits with it (at 512
connections the app's own p99 was 225 ms, the clients' 634).

So each worker publishes how many connections it holds, in memory shared
with its siblings (`ConnectionCounts`), and per turn it accepts one
connection, then more while it holds no more than `LEAD` connections above
the sibling holding fewest. Balanced workers take a burst in together at up
to `MAX_ACCEPTS_PER_TURN` a turn each; one that is ahead leaves the rest to
the others. The first accept of a turn is never refused, so a sibling that is
stuck or slow costs the others no more than one connection per turn.
"""

from __future__ import annotations

import asyncio
import socket
from multiprocessing.context import BaseContext
from typing import Any

from hypercorn.config import Config, Sockets

MAX_ACCEPTS_PER_TURN = 64
LEAD = 2
"""Connections a worker may hold above its least loaded sibling and still accept more."""
FREE = -1
NOT_ACCEPTING = -2


class ConnectionCounts:
    """Each worker's open-connection count, in a slot of memory shared by the workers.

    The supervisor hands out the slots and frees a worker's once it has
    exited; in between only the worker writes to it. Siblings skip a slot that
    is `FREE` or `NOT_ACCEPTING` (a worker that is stopping).
    """

    def __init__(self, context: BaseContext, slots: int) -> None:
        self.shared: Any = context.RawArray("i", [FREE] * slots)

    def claim(self) -> int | None:
        """A free slot for a new worker, set to 0; None when all are taken."""
        for slot, count in enumerate(self.shared):
            if count == FREE:
                self.shared[slot] = 0
                return slot
        return None

    def release(self, slot: int) -> None:
        self.shared[slot] = FREE


class AcceptShare:
    """One worker's side of the counts: its own, kept current, and its siblings'."""

    def __init__(self, counts: ConnectionCounts | None, slot: int | None) -> None:
        # Without a slot there is nothing to publish or compare: accept as asyncio would.
        self.counts = counts.shared if counts is not None and slot is not None else None
        self.slot = -1 if slot is None else slot
        self.held = 0
        self.accepted_this_turn = 0
        self.stopped = False

    def may_accept(self) -> bool:
        if self.accepted_this_turn == 0 or self.counts is None:
            return True
        fewest = min(
            (count for slot, count in enumerate(self.counts) if slot != self.slot and count >= 0),
            default=None,
        )
        return fewest is None or self.held <= fewest + LEAD

    def opened(self) -> None:
        if self.accepted_this_turn == 0:
            asyncio.get_running_loop().call_soon(self._next_turn)
        self.accepted_this_turn += 1
        self._held(self.held + 1)

    def closed(self) -> None:
        self._held(self.held - 1)

    def stop_accepting(self) -> None:
        """Siblings stop counting on this worker: it takes no more connections."""
        self.stopped = True
        if self.counts is not None:
            self.counts[self.slot] = NOT_ACCEPTING
            self.counts = None

    def _next_turn(self) -> None:
        self.accepted_this_turn = 0

    def _held(self, held: int) -> None:
        self.held = held
        if self.counts is not None:
            self.counts[self.slot] = held


class CountedConnection(socket.socket):
    """An accepted connection that tells its worker's `AcceptShare` when it closes."""

    share: AcceptShare | None = None

    def release(self) -> None:
        """Counted off its worker's connections (once), the socket itself left as it is."""
        share, self.share = self.share, None
        if share is not None:
            share.closed()

    def close(self) -> None:
        self.release()
        super().close()


class SharedListener(socket.socket):
    """A listening socket shared by the workers, accepting as `AcceptShare` allows.

    asyncio passes its `backlog` (the most it accepts per turn) to `listen()`
    as well; the kernel's queue keeps the configured length instead.
    """

    queue_length = 128
    share: AcceptShare

    def listen(self, backlog: int = 0) -> None:
        super().listen(self.queue_length)

    def accept(self) -> tuple[socket.socket, Any]:
        if not self.share.may_accept():
            raise BlockingIOError  # asyncio ends this turn's accepting
        fd, address = self._accept()  # type: ignore[attr-defined]
        connection = CountedConnection(self.family, self.type, self.proto, fileno=fd)
        connection.share = self.share
        self.share.opened()
        return connection, address


def sharing_accepts(config: Config, sockets: Sockets, share: AcceptShare) -> Sockets:
    """`sockets` as listeners that accept as `share` allows (uvloop's workers need
    `uvloop_accepting.SharingLoop` as well: libuv accepts by itself)."""
    queue_length, config.backlog = config.backlog, MAX_ACCEPTS_PER_TURN

    def sharing(sock: socket.socket) -> socket.socket:
        listener = SharedListener(sock.family, sock.type, sock.proto, fileno=sock.detach())
        listener.queue_length = queue_length
        listener.share = share
        return listener

    return Sockets(
        [sharing(sock) for sock in sockets.secure_sockets],
        [sharing(sock) for sock in sockets.insecure_sockets],
        sockets.quic_sockets,
    )

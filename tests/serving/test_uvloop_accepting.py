"""uvloop's workers accept by the same shared counts as asyncio's, not as libuv would."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Coroutine
from multiprocessing import get_context
from typing import Any

import pytest
from hypercorn.config import Config, Sockets

pytest.importorskip("uvloop", reason="uvloop is not installed (it does not build on Windows)")

from quart_tasks.serving.accepting import LEAD, AcceptShare, ConnectionCounts, sharing_accepts
from quart_tasks.serving.uvloop_accepting import SharedListenerServer, SharingLoop
from tests.helpers.connections import connections_to


def on_sharing_loop(main: Callable[[], Coroutine[Any, Any, Any]]) -> Any:
    with asyncio.Runner(loop_factory=SharingLoop) as runner:
        return runner.run(main())


def shared_listeners(workers: int) -> tuple[socket.socket, list[AcceptShare], list[socket.socket]]:
    """One listening socket, and per worker its share and its own listener on that socket."""
    counts = ConnectionCounts(get_context("spawn"), 4)
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    shares, listeners = [], []
    for _ in range(workers):
        share = AcceptShare(counts, counts.claim())
        config = Config()
        config.backlog = 512
        own = socket.socket(fileno=socket.dup(listener.fileno()))
        listeners.append(sharing_accepts(config, Sockets([], [own], []), share).insecure_sockets[0])
        shares.append(share)
    return listener, shares, listeners


async def until(condition: Callable[[], bool]) -> None:
    for _ in range(300):
        if condition():
            return
        await asyncio.sleep(0.01)


@pytest.mark.parametrize("workers", [2, 3])
def test_workers_on_one_socket_split_a_burst_evenly(workers: int) -> None:
    """Each worker a server on the shared socket, in one uvloop loop taking turns. Served
    by libuv, the first to wake took the whole burst."""
    listener, shares, listeners = shared_listeners(workers)

    async def burst() -> list[int]:
        loop = asyncio.get_running_loop()
        servers = [await loop.create_server(asyncio.Protocol, sock=own) for own in listeners]
        assert all(isinstance(server, SharedListenerServer) for server in servers)
        try:
            with connections_to(listener.getsockname()[1], 96):
                await until(lambda: sum(share.held for share in shares) == 96)
                return sorted(share.held for share in shares)
        finally:
            for server in servers:
                server.close()
                await server.wait_closed()

    try:
        held = on_sharing_loop(burst)
    finally:
        listener.close()
    assert sum(held) == 96
    assert held[-1] - held[0] <= LEAD + 1, f"split {held}"


def test_a_connection_is_counted_off_once_its_client_has_closed_it() -> None:
    """libuv closes the socket itself: the count follows the protocol's connection_lost."""
    listener, (share,), (own,) = shared_listeners(1)
    lost: list[Exception | None] = []

    class Recording(asyncio.Protocol):
        def connection_lost(self, exc: Exception | None) -> None:
            lost.append(exc)

    async def connect_then_close() -> tuple[int, int]:
        server = await asyncio.get_running_loop().create_server(Recording, sock=own)
        try:
            with connections_to(listener.getsockname()[1], 5):
                await until(lambda: share.held == 5)
                held_while_open = share.held
            await until(lambda: share.held == 0)
            return held_while_open, share.held
        finally:
            server.close()

    try:
        assert on_sharing_loop(connect_then_close) == (5, 0)
    finally:
        listener.close()
    assert len(lost) == 5, "the protocol's own connection_lost still runs"
    assert share.counts is not None
    assert share.counts[share.slot] == 0


def test_a_stopping_worker_does_not_read_its_listener_again_after_a_pause() -> None:
    """Out of file descriptors, accepting pauses and resumes; a worker that has stopped
    accepting in between must stay stopped."""
    listener, (share,), (own,) = shared_listeners(1)

    async def pause_stop_resume() -> int:
        loop = asyncio.get_running_loop()
        server = await loop.create_server(asyncio.Protocol, sock=own)
        assert isinstance(server, SharedListenerServer)
        try:
            loop.remove_reader(own.fileno())  # what the worker's stop signal does
            share.stop_accepting()
            server._start_reading()  # the pause is over
            with connections_to(listener.getsockname()[1], 1):
                await asyncio.sleep(0.2)
                return share.held
        finally:
            server.close()

    try:
        assert on_sharing_loop(pause_stop_resume) == 0, "the listener was read again"
    finally:
        listener.close()


def test_other_sockets_are_served_by_uvloop_itself() -> None:
    plain = socket.socket()
    plain.bind(("127.0.0.1", 0))

    async def serve() -> str:
        server = await asyncio.get_running_loop().create_server(asyncio.Protocol, sock=plain)
        server.close()
        await server.wait_closed()
        return type(server).__module__

    assert on_sharing_loop(serve).startswith("uvloop")

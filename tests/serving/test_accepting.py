"""Workers on one listening socket split new connections evenly, and take a burst in fast."""

from __future__ import annotations

import asyncio
import contextlib
import socket
from multiprocessing import get_context

import pytest
from hypercorn.config import Config, Sockets

from quart_tasks.serving.accepting import (
    LEAD,
    MAX_ACCEPTS_PER_TURN,
    NOT_ACCEPTING,
    AcceptShare,
    ConnectionCounts,
    sharing_accepts,
)
from tests.helpers.connections import connections_to


def counts(slots: int = 4) -> ConnectionCounts:
    return ConnectionCounts(get_context("spawn"), slots)


def claimed(shared: ConnectionCounts) -> AcceptShare:
    slot = shared.claim()
    assert slot is not None
    return AcceptShare(shared, slot)


def test_slots_are_claimed_once_and_reused_when_released() -> None:
    shared = counts(slots=2)
    first, second = shared.claim(), shared.claim()
    assert (first, second) == (0, 1)
    assert shared.claim() is None, "no slot left: the worker runs without one"
    shared.release(0)
    assert shared.claim() == 0
    assert list(shared.shared) == [0, 0]


async def accept_turn(share: AcceptShare) -> int:
    """What asyncio does each time a listener is ready: accept until refused. Then the turn ends."""
    accepted = 0
    while accepted < MAX_ACCEPTS_PER_TURN and share.may_accept():
        share.opened()
        accepted += 1
    await asyncio.sleep(0)  # the next turn of the loop
    return accepted


async def test_a_worker_accepts_while_at_most_lead_above_its_least_loaded_sibling() -> None:
    shared = counts()
    mine, sibling, busier = claimed(shared), claimed(shared), claimed(shared)
    for _ in range(10):
        busier.opened()
    await asyncio.sleep(0)

    assert await accept_turn(mine) == LEAD + 1, "the sibling holding fewest (0) sets the limit"
    assert await accept_turn(mine) == 1, "ahead of a sibling: still one a turn, never none"
    assert shared.shared[mine.slot] == LEAD + 2
    assert await accept_turn(sibling) == 2 * LEAD + 3, "a worker behind catches up in one turn"


async def test_siblings_that_stopped_accepting_or_left_do_not_hold_a_worker_back() -> None:
    shared = counts()
    mine, draining, dead = claimed(shared), claimed(shared), claimed(shared)
    draining.stop_accepting()
    shared.release(dead.slot)

    assert await accept_turn(mine) == MAX_ACCEPTS_PER_TURN
    assert shared.shared[draining.slot] == NOT_ACCEPTING
    assert shared.claim() == dead.slot, "a stopping worker's slot is still its own"
    draining.closed()
    assert shared.shared[draining.slot] == NOT_ACCEPTING, "it no longer publishes its count"


async def test_a_worker_without_a_slot_accepts_up_to_the_batch() -> None:
    assert await accept_turn(AcceptShare(None, None)) == MAX_ACCEPTS_PER_TURN


async def test_a_listener_counts_what_it_accepts_and_what_closes() -> None:
    """Through the real accept path: the shared count follows the connections held."""
    shared = counts()
    mine, sibling = claimed(shared), claimed(shared)
    config = Config()
    config.backlog = 128
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listening = sharing_accepts(config, Sockets([], [listener], []), mine).insecure_sockets[0]
    listening.listen(config.backlog)
    listening.setblocking(False)
    port = listening.getsockname()[1]
    try:
        with connections_to(port, 20):
            accepted = []
            with contextlib.suppress(BlockingIOError):
                while True:
                    accepted.append(listening.accept()[0])
            assert len(accepted) == LEAD + 1, "sibling holds none: LEAD + 1 this turn"
            assert shared.shared[mine.slot] == LEAD + 1
            await asyncio.sleep(0)
            accepted.append(listening.accept()[0])  # a new turn: one more
            assert shared.shared[mine.slot] == LEAD + 2
            for connection in accepted:
                connection.close()
            accepted[0].close()  # a second close counts once
            assert shared.shared[mine.slot] == 0
            assert shared.shared[sibling.slot] == 0
    finally:
        listening.close()


@pytest.mark.parametrize("workers", [2, 3])
async def test_workers_on_one_socket_split_a_burst_evenly(workers: int) -> None:
    """Each worker an asyncio server on the shared socket, in one loop taking turns."""
    shared = counts()
    shares = [claimed(shared) for _ in range(workers)]
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(512)
    port = listener.getsockname()[1]
    servers = []
    for share in shares:
        config = Config()
        config.backlog = 512
        own = socket.socket(fileno=socket.dup(listener.fileno()))
        listening = sharing_accepts(config, Sockets([], [own], []), share).insecure_sockets[0]
        servers.append(
            await asyncio.get_running_loop().create_server(
                asyncio.Protocol, sock=listening, backlog=config.backlog
            )
        )
    try:
        with connections_to(port, 96):
            for _ in range(200):
                if sum(share.held for share in shares) == 96:
                    break
                await asyncio.sleep(0.01)
            held = sorted(share.held for share in shares)
    finally:
        for server in servers:
            server.close()
        listener.close()

    assert sum(held) == 96
    assert held[-1] - held[0] <= LEAD + 1, f"split {held}"

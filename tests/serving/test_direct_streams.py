"""A response handed to its outlet puts on the wire what the ASGI path would, byte for byte."""

from __future__ import annotations

import asyncio
import base64
import os
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from typing import Any

import h11
import hypercorn.protocol.h11
import pytest
import wsproto.events
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.events import Closed, Event, RawData
from wsproto.frame_protocol import FrameProtocol

from quart_tasks.serving.direct_streams import (
    OUTLET,
    DirectStreamsH11Protocol,
    DirectWSStream,
    Outlet,
    chunk,
    websocket_text,
)
from tests.helpers.protocols import ASGIApp, protocol_on

GET = b"GET /events HTTP/1.1\r\nhost: test\r\n\r\n"
CHUNKS = [b"retry: 2000\n\n", b"id: 1\ndata: {}\n\n", b"id: 2\ndata: " + b"x" * 5000 + b"\n\n"]


@pytest.fixture(autouse=True)
def direct_websockets(monkeypatch: pytest.MonkeyPatch) -> None:
    """The WebSocket stream the patches install with the protocol."""
    monkeypatch.setattr(hypercorn.protocol.h11, "WSStream", DirectWSStream)


class Transport:
    """A connection's transport: what was written, in order, and how much is unsent."""

    def __init__(self) -> None:
        self.data = bytearray()
        self.unsent = 0
        self.closing = False
        self.written = asyncio.Event()

    def write(self, data: bytes) -> None:
        self.data += data
        self.written.set()

    def get_write_buffer_size(self) -> int:
        return self.unsent

    def is_closing(self) -> bool:
        return self.closing

    async def until(self, condition: Callable[[bytes], bool]) -> None:
        async with asyncio.timeout(5):
            while not condition(bytes(self.data)):
                self.written.clear()
                await self.written.wait()


class Server:
    """Hypercorn's `TCPServer` as its protocol sees it: `protocol_send` and `writer.transport`."""

    def __init__(self) -> None:
        self.transport = Transport()
        self.writer = self  # `writer.transport`
        self.closed = asyncio.Event()
        self.idle = asyncio.Event()

    async def protocol_send(self, event: Event) -> None:
        if isinstance(event, RawData):
            self.transport.write(event.data)
        elif isinstance(event, Closed):
            self.closed.set()
        elif getattr(event, "idle", False):
            self.idle.set()


@asynccontextmanager
async def connection(
    app: ASGIApp, context: WorkerContext | None = None
) -> AsyncIterator[tuple[DirectStreamsH11Protocol, Server]]:
    server = Server()
    async with protocol_on(app, DirectStreamsH11Protocol, server.protocol_send, context) as made:
        yield made, server


def streaming(
    *,
    headers: list[tuple[bytes, bytes]] | None = None,
    outlets: list[Outlet | None] | None = None,
    taken: list[bool] | None = None,
    ended: asyncio.Event | None = None,
) -> ASGIApp:
    """An event stream: its head and first chunk through ASGI, then, when the server offers
    an outlet (recorded in `outlets`), its try at handing the body over (in `taken`);
    without one, or refused, the remaining `CHUNKS` through ASGI."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        head = headers if headers is not None else [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": head})
        await send({"type": "http.response.body", "body": CHUNKS[0], "more_body": True})
        outlet = scope["extensions"].get(OUTLET)
        if outlets is not None:
            outlets.append(outlet)
        if outlet is not None and taken is not None:
            taken.append(outlet.take_over(on_lost=lambda: None))
            if taken[-1]:
                await send({"type": "http.response.body", "body": b"", "more_body": False})
                if ended is not None:
                    ended.set()
                return
        for data in CHUNKS[1:]:
            await send({"type": "http.response.body", "body": data, "more_body": True})
        await send({"type": "http.response.body", "body": b"", "more_body": False})

    return app


def without_date(data: bytes) -> bytes:
    return b"\r\n".join(line for line in data.split(b"\r\n") if not line.startswith(b"date:"))


async def test_a_handed_over_body_is_byte_for_byte_what_asgi_would_have_written() -> None:
    async with connection(streaming()) as (protocol, server):
        await protocol.handle(RawData(GET))
        await server.idle.wait()  # the response ended, the connection is ready for another
    ordinary = bytes(server.transport.data)

    outlets: list[Outlet | None] = []
    taken: list[bool] = []
    app_ended = asyncio.Event()
    async with connection(streaming(outlets=outlets, taken=taken, ended=app_ended)) as (
        protocol,
        server,
    ):
        await protocol.handle(RawData(GET))
        await asyncio.wait_for(app_ended.wait(), 5)
        [outlet] = outlets
        assert outlet is not None
        for data in CHUNKS[1:]:
            outlet.write(chunk(data))
        assert not server.idle.is_set(), "the response is still the outlet's"
        outlet.finish()
        await asyncio.wait_for(server.idle.wait(), 5)
        direct = bytes(server.transport.data)

        # The connection serves its next request as after any response.
        await protocol.handle(RawData(GET))
        await server.transport.until(lambda data: data.count(b"HTTP/1.1 200") == 2)

    assert taken[0] is True
    assert ordinary.endswith(b"0\r\n\r\n")
    assert without_date(direct) == without_date(ordinary)


def test_a_chunk_is_framed_as_h11_frames_it() -> None:
    connection = h11.Connection(h11.SERVER)
    connection.receive_data(GET)
    connection.next_event()
    connection.send(h11.Response(status_code=200, headers=[]))
    for data in CHUNKS:
        assert chunk(data) == connection.send(h11.Data(data=data))


@pytest.mark.parametrize(
    ("request_bytes", "headers"),
    [
        pytest.param(b"GET /events HTTP/1.0\r\n\r\n", None, id="HTTP/1.0: no chunks"),
        pytest.param(b"HEAD /events HTTP/1.1\r\nhost: t\r\n\r\n", None, id="HEAD"),
        pytest.param(GET, [(b"content-encoding", b"gzip")], id="encoded"),
    ],
)
async def test_a_response_the_outlet_cannot_frame_stays_on_the_asgi_path(
    request_bytes: bytes, headers: list[tuple[bytes, bytes]] | None
) -> None:
    outlets: list[Outlet | None] = []
    taken: list[bool] = []
    async with connection(streaming(headers=headers, outlets=outlets, taken=taken)) as (
        protocol,
        server,
    ):
        await protocol.handle(RawData(request_bytes))
        await server.transport.until(lambda _: bool(outlets))
        if request_bytes.startswith(b"GET"):
            await server.transport.until(lambda data: CHUNKS[-1] in data)

    # Refused, or (HEAD: not a stream) not even offered.
    assert taken == ([] if request_bytes.startswith(b"HEAD") else [False])


async def test_a_client_that_leaves_is_reported_and_nothing_more_is_written() -> None:
    lost = asyncio.Event()

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": CHUNKS[0], "more_body": True})
        assert scope["extensions"][OUTLET].take_over(on_lost=lost.set)
        outlets.append(scope["extensions"][OUTLET])

    outlets: list[Outlet] = []
    async with connection(app) as (protocol, server):
        await protocol.handle(RawData(GET))
        await server.transport.until(lambda _: bool(outlets))
        await protocol.handle(Closed())
        await asyncio.wait_for(lost.wait(), 5)
        written = bytes(server.transport.data)
        outlets[0].finish()  # too late: does nothing
        await asyncio.sleep(0.01)

    assert server.transport.data == written
    assert not written.endswith(b"0\r\n\r\n")


async def test_a_response_finished_while_the_worker_stops_closes_its_connection() -> None:
    outlets: list[Outlet | None] = []
    context = WorkerContext(None)
    async with connection(streaming(outlets=outlets, taken=[]), context) as (protocol, server):
        await protocol.handle(RawData(GET))
        await server.transport.until(lambda _: bool(outlets))
        await context.terminated.set()
        outlet = outlets[0]
        assert outlet is not None
        outlet.finish()
        await asyncio.wait_for(server.closed.wait(), 5)

    assert server.transport.data.endswith(b"0\r\n\r\n")
    assert not server.idle.is_set()


def upgrade(extensions: str | None) -> bytes:
    key = base64.b64encode(os.urandom(16)).decode()
    lines = [
        "GET /ws HTTP/1.1",
        "host: test",
        "upgrade: websocket",
        "connection: Upgrade",
        f"sec-websocket-key: {key}",
        "sec-websocket-version: 13",
    ]
    if extensions is not None:
        lines.append(f"sec-websocket-extensions: {extensions}")
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def websocket_app(taken: list[bool], outlets: list[Outlet], *, decline: bool = False) -> ASGIApp:
    """Accepts, sends one message through ASGI, tries to hand the socket over (before the
    accept too: too early), and when it could, ends as Quart does: with a close."""

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "websocket":
            return
        outlet: Outlet = scope["extensions"][OUTLET]
        taken.append(outlet.take_over(on_lost=lambda: None))
        await receive()  # websocket.connect
        if decline:
            outlet.decline_extensions()
        await send({"type": "websocket.accept"})
        await send({"type": "websocket.send", "text": '{"id":1}'})
        taken.append(outlet.take_over(on_lost=lambda: None))
        outlets.append(outlet)
        if taken[-1]:
            await send({"type": "websocket.close", "code": 1000})
            return
        await receive()

    return app


def client_frames(*events: wsproto.events.Event) -> bytes:
    """What a client sends: masked frames."""
    client = FrameProtocol(client=True, extensions=[])
    data = b""
    for event in events:
        if isinstance(event, wsproto.events.Ping):
            data += client.ping(event.payload)
        elif isinstance(event, wsproto.events.CloseConnection):
            data += client.close(event.code)
    return data


async def test_a_websocket_handed_over_gets_the_frames_hypercorn_would_write() -> None:
    taken: list[bool] = []
    outlets: list[Outlet] = []
    async with connection(websocket_app(taken, outlets)) as (protocol, server):
        await protocol.handle(RawData(upgrade(None)))
        await server.transport.until(lambda _: bool(outlets))
        await asyncio.sleep(0.01)  # the app's close, sent as it ended, is not written
        outlet = outlets[0]
        assert outlet.websocket
        outlet.write(websocket_text('{"id":1}'))
        frame = websocket_text('{"id":1}')
        assert server.transport.data.endswith(frame + frame)

        # Hypercorn still answers the client's ping, and drops its messages.
        await protocol.handle(RawData(client_frames(wsproto.events.Ping(b"hi"))))
        await server.transport.until(lambda data: data.endswith(b"\x8a\x02hi"))
        outlet.finish()
        close_1000 = b"\x88\x02\x03\xe8"
        await server.transport.until(lambda data: data.endswith(close_1000))
        await protocol.handle(RawData(client_frames(wsproto.events.CloseConnection(1000))))
        await asyncio.wait_for(server.closed.wait(), 5)

    assert taken == [False, True]


async def test_a_websocket_whose_client_leaves_is_reported() -> None:
    taken: list[bool] = []
    outlets: list[Outlet] = []
    async with connection(websocket_app(taken, outlets)) as (protocol, server):
        await protocol.handle(RawData(upgrade(None)))
        await server.transport.until(lambda _: bool(outlets))
        lost = asyncio.Event()
        outlets[0]._on_lost = lost.set
        await protocol.handle(RawData(client_frames(wsproto.events.CloseConnection(1001))))
        await asyncio.wait_for(lost.wait(), 5)


async def test_a_websocket_with_compression_keeps_the_asgi_path() -> None:
    taken: list[bool] = []
    async with connection(websocket_app(taken, [])) as (protocol, server):
        await protocol.handle(RawData(upgrade("permessage-deflate")))
        await server.transport.until(lambda _: len(taken) == 2)

    assert taken == [False, False]


async def test_a_websocket_accepted_without_the_compression_offered_is_handed_over() -> None:
    taken: list[bool] = []
    async with connection(websocket_app(taken, [], decline=True)) as (protocol, server):
        await protocol.handle(RawData(upgrade("permessage-deflate")))
        await server.transport.until(lambda _: len(taken) == 2)

    head = bytes(server.transport.data).partition(b"\r\n\r\n")[0].lower()
    assert head.startswith(b"http/1.1 101 ")
    assert b"sec-websocket-extensions" not in head
    assert taken == [False, True]

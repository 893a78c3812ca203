"""A response with a known length reaches the socket in one write; a stream's head at once."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import h2.config
import h2.connection
import h2.events
import hypercorn.asyncio.run
import hypercorn.protocol
import pytest
from hypercorn.app_wrappers import ASGIWrapper
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import WorkerContext
from hypercorn.config import Config
from hypercorn.events import Closed, Event, RawData
from hypercorn.protocol import ProtocolWrapper
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.typing import ConnectionState

from quart_tasks.serving.h2_writes import OneWriteH2Protocol
from quart_tasks.serving.patches import install_serving_patches
from quart_tasks.serving.response_writes import OneWriteH11Protocol
from tests.helpers.protocols import protocol_on

ASGIApp = Callable[[dict[str, Any], Any, Any], Awaitable[None]]
REQUEST = b"GET /x HTTP/1.1\r\nhost: test\r\n\r\n"
HEAD_REQUEST = b"HEAD /x HTTP/1.1\r\nhost: test\r\n\r\n"


def answering(body: bytes, *, length: bool) -> ASGIApp:
    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"application/json")]
        if length:
            headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": body})

    return app


class Socket:
    """What a connection wrote, one item a write."""

    def __init__(self) -> None:
        self.writes: list[bytes] = []
        self.written = asyncio.Event()

    async def send(self, event: Event) -> None:
        if isinstance(event, RawData) and event.data:
            self.writes.append(event.data)
            self.written.set()

    async def until(self, condition: Callable[[list[bytes]], bool]) -> None:
        """Wait, up to 5 s, for writes that make `condition` hold."""
        async with asyncio.timeout(5):
            while not condition(self.writes):
                self.written.clear()
                await self.written.wait()


@asynccontextmanager
async def connection(
    app: ASGIApp, protocol_class: type = OneWriteH11Protocol
) -> AsyncIterator[tuple[Any, Socket]]:
    """A protocol on one connection, and the socket it writes to."""
    socket = Socket()
    async with protocol_on(app, protocol_class, socket.send) as protocol:
        yield protocol, socket


@pytest.mark.parametrize("body", [b'{"id":1}', b"x" * 100_000])
async def test_a_response_of_known_length_is_one_write(body: bytes) -> None:
    async with connection(answering(body, length=True)) as (protocol, socket):
        await protocol.handle(RawData(REQUEST))
        await socket.until(lambda writes: b"".join(writes).endswith(body))
    [written] = socket.writes
    assert written.startswith(b"HTTP/1.1 200 ")
    assert written.endswith(b"\r\n\r\n" + body)


async def test_the_status_line_has_its_reason_phrase() -> None:
    """`HTTP/1.1 200 ` is valid, but nghttp2's HTTP/1.1 client counts it as a failure."""
    async with connection(answering(b"{}", length=True)) as (protocol, socket):
        await protocol.handle(RawData(REQUEST))
        await socket.until(lambda writes: b"".join(writes).endswith(b"{}"))

    assert b"".join(socket.writes).startswith(b"HTTP/1.1 200 OK\r\n")


async def test_hypercorns_own_protocol_writes_it_twice() -> None:
    """What the class changes: without it the head goes out alone."""
    body = b'{"id":1}'
    async with connection(answering(body, length=True), H11Protocol) as (protocol, socket):
        await protocol.handle(RawData(REQUEST))
        await socket.until(lambda writes: b"".join(writes).endswith(body))
    assert len(socket.writes) == 2


async def test_a_head_request_gets_its_head() -> None:
    async with connection(answering(b'{"id":1}', length=True)) as (protocol, socket):
        await protocol.handle(RawData(HEAD_REQUEST))
        await socket.until(bool)
    [written] = socket.writes
    assert written.startswith(b"HTTP/1.1 200 ")
    assert b"\r\ncontent-length: 8\r\n" in written
    assert written.endswith(b"\r\n\r\n")  # and no body


async def test_keep_alive_requests_each_get_their_answer() -> None:
    body = b'{"id":1}'
    async with connection(answering(body, length=True)) as (protocol, socket):
        for served in (1, 2, 3):
            await protocol.handle(RawData(REQUEST))
            await socket.until(lambda writes, served=served: len(writes) == served)  # type: ignore[misc]
    assert all(written.endswith(b"\r\n\r\n" + body) for written in socket.writes)


async def test_a_streams_head_is_written_before_its_first_chunk() -> None:
    first_chunk = asyncio.Event()

    async def stream(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        headers = [(b"content-type", b"text/event-stream")]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await first_chunk.wait()
        await send({"type": "http.response.body", "body": b"data: 1\n\n"})

    async with connection(stream) as (protocol, socket):
        await protocol.handle(RawData(REQUEST))
        await socket.until(bool)
        assert socket.writes[0].startswith(b"HTTP/1.1 200 ")
        assert b"data: 1" not in socket.writes[0]
        first_chunk.set()
        await socket.until(lambda writes: any(b"data: 1" in w for w in writes))


def test_workers_are_made_to_use_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(hypercorn.protocol, "H11Protocol", H11Protocol)
    monkeypatch.setattr(hypercorn.asyncio.run, "TCPServer", TCPServer)
    install_serving_patches()
    wrapper = ProtocolWrapper(
        ASGIWrapper(answering(b"", length=True)),  # type: ignore[arg-type]
        Config(),
        WorkerContext(None),
        None,  # type: ignore[arg-type]
        ConnectionState({}),
        False,
        None,
        None,
        None,  # type: ignore[arg-type]
    )
    assert isinstance(wrapper.protocol, OneWriteH11Protocol)


H11Protocol = hypercorn.protocol.h11.H11Protocol


async def h2_answer_writes(protocol_class: type, body: bytes) -> list[list[type]]:
    """The h2 events each write of an HTTP/2 answer to one GET carries, write by write."""
    client = h2.connection.H2Connection(h2.config.H2Configuration(client_side=True))
    client.initiate_connection()
    socket = Socket()
    task_group = TaskGroup(asyncio.get_running_loop())
    async with task_group:
        protocol = protocol_class(
            ASGIWrapper(answering(body, length=True)),  # type: ignore[arg-type]
            Config(),
            WorkerContext(None),
            task_group,
            ConnectionState({}),
            True,
            ("127.0.0.1", 50000),
            ("127.0.0.1", 8000),
            socket.send,
        )
        await protocol.initiate()
        await protocol.handle(RawData(client.data_to_send()))
        request = [(":method", "GET"), (":path", "/x"), (":scheme", "https"), (":authority", "t")]
        client.send_headers(1, request, end_stream=True)
        settled = len(socket.writes)
        await protocol.handle(RawData(client.data_to_send()))

        def ended(writes: list[bytes]) -> bool:
            return b"".join(writes).endswith(body) or len(writes) >= settled + 3

        await socket.until(ended)
        await asyncio.sleep(0.05)  # an end of stream written on its own would be here now
        await protocol.handle(Closed())
    return [
        [type(event) for event in client.receive_data(write) if getattr(event, "stream_id", 0)]
        for write in socket.writes[settled:]
    ]


async def test_an_http2_answer_is_one_write() -> None:
    writes = await h2_answer_writes(OneWriteH2Protocol, b'{"id":1}')

    answer = [write for write in writes if write]
    assert answer == [[h2.events.ResponseReceived, h2.events.DataReceived, h2.events.StreamEnded]]


async def test_hypercorns_http2_protocol_writes_it_in_three() -> None:
    writes = await h2_answer_writes(H2Protocol, b'{"id":1}')

    answer = [write for write in writes if write]
    assert len(answer) == 3

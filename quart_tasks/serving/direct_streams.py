"""Long-lived responses written straight to their connection: one encoding for every subscriber.

An event stream costs, per subscriber and per event, a wake-up of its task, Quart's body
loop, Hypercorn's ASGI send and h11's framing before its socket write: 37 µs of a
worker's CPU per delivery, so 5,000 subscribers of ten changes a second were more than
one core (docs/performance/24-direct-streams.md). Here a response may hand its body,
once its head and first bytes are out, to whoever produces it: that code frames each
message once for every connection (`chunk`, `websocket_text`) and writes the same bytes
to each one's transport (`Outlet.write`).

- **HTTP/1.1**: the response must be a `GET`'s 200, unencoded, in
  chunked transfer coding. Hypercorn then takes no further part in the response: the
  request's task ends (an idle subscriber keeps nothing of Quart's), the app's end of
  the body is not written, and the connection only reads, to hear the client leave
  (`on_lost`). `Outlet.finish` writes the last chunk, after which Hypercorn goes on as
  after any response: the next request on the connection, or its close.
- **WebSocket**: once accepted, without extensions (a compressed message is compressed
  for its connection alone; `Outlet.decline_extensions` before the accept), the same:
  the app's handler ends, and what it sends after (its close) is not written. Hypercorn
  still answers the client's pings and its close, and drops the messages it sends
  (nothing reads them). `Outlet.finish` sends the close (1000).
- **HTTP/2** offers no outlet (its frames are per stream, with flow control): the ordinary
  path serves.

Installed with the other Hypercorn patches (`patches.install_serving_patches`): the
protocol offers an `Outlet` in the request's ASGI scope, under `extensions[OUTLET]`.
The bytes on the wire are those the ordinary path writes (tests/serving/test_direct_streams.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import h11
from hypercorn.events import Closed, Event
from hypercorn.protocol.events import EndBody, StreamClosed
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.protocol.ws_stream import ASGIWebsocketState, WSStream
from hypercorn.typing import WebsocketCloseEvent
from wsproto.frame_protocol import FrameProtocol

from quart_tasks.serving.stop_drain import DrainingH11Protocol

if TYPE_CHECKING:
    import asyncio

OUTLET = "quart_tasks.outlet"
"""The ASGI scope extension under which a connection offers its `Outlet`."""


def chunk(data: bytes) -> bytes:
    """`data` as one chunk of HTTP/1.1's chunked transfer coding, as h11 frames it."""
    return b"%x\r\n%s\r\n" % (len(data), data)


def websocket_text(message: str) -> bytes:
    """`message` as one unmasked WebSocket text frame, as wsproto frames it for a server."""
    return bytes(FrameProtocol(client=False, extensions=[]).send_data(message, fin=True))


class Outlet:
    """A response's connection, for writing its body's bytes without the ASGI send path."""

    __slots__ = ("_on_lost", "_protocol", "transport")

    def __init__(self, protocol: DirectStreamsH11Protocol, transport: asyncio.WriteTransport):
        self._protocol = protocol
        self._on_lost: Callable[[], None] | None = None
        self.transport = transport

    @property
    def websocket(self) -> bool:
        """Whether the connection carries a WebSocket (frames), not a response (chunks)."""
        return isinstance(self._protocol.stream, DirectWSStream)

    def take_over(self, on_lost: Callable[[], None]) -> bool:
        """Own the rest of this response's body, or this WebSocket's messages; False when
        the ordinary path must go on. Call once what was sent through ASGI so far has been
        written (after an awaited send returns), and end the app's part straight after;
        `on_lost` is called if the client leaves first."""
        stream = self._protocol.stream
        if isinstance(stream, DirectWSStream):
            if not stream.can_hand_over():
                return False
            stream.hand_over(self)
        elif self._protocol.can_hand_over():
            self._protocol.outlet = self
        else:
            return False
        self._on_lost = on_lost
        return True

    def decline_extensions(self) -> None:
        """Accept this WebSocket without the extensions its client offers, so that its
        messages can be handed over: per-message deflate keeps a zlib context per
        connection (149 KiB a subscriber measured, against 22) and compresses each message
        for each connection. Call before the accept; nothing for other connections."""
        stream = self._protocol.stream
        if isinstance(stream, DirectWSStream) and stream.state is ASGIWebsocketState.HANDSHAKE:
            stream.handshake.extensions = None

    def write(self, data: bytes) -> None:
        self.transport.write(data)

    @property
    def backlog(self) -> int:
        """Bytes written and not yet taken by the kernel: how far the client is behind."""
        return self.transport.get_write_buffer_size()

    @property
    def closed(self) -> bool:
        return self.transport.is_closing()

    def finish(self) -> None:
        """End the response (its last chunk) or the WebSocket (a close, 1000), then serve
        the connection as Hypercorn would. Does nothing once the client has left."""
        protocol, stream = self._protocol, self._protocol.stream
        if protocol.outlet is self:
            protocol.outlet = None
            protocol.task_group.spawn(protocol.end_handed_over_response)
        elif isinstance(stream, DirectWSStream) and stream.outlet is self:
            stream.outlet = None
            protocol.task_group.spawn(stream.close_handed_over)

    def lost(self) -> None:
        on_lost, self._on_lost = self._on_lost, None
        if on_lost is not None:
            on_lost()


class DirectStreamsH11Protocol(DrainingH11Protocol):
    outlet: Outlet | None = None
    """The outlet that owns this connection's current response, once handed over."""
    _head: h11.Response | None = None

    async def _create_stream(self, request: h11.Request) -> None:
        await super()._create_stream(request)
        self._head = None
        if request.method != b"GET":  # a stream or a WebSocket; nothing else is handed over
            return
        transport = _transport_of(self.send)
        stream = self.stream
        if transport is not None and isinstance(stream, HTTPStream | WSStream):
            # The app's task is spawned, not yet run: it finds this in its scope.
            scope: Any = stream.scope
            scope["extensions"][OUTLET] = Outlet(self, transport)

    async def _send_h11_event(self, event: Any) -> None:
        if isinstance(event, h11.Response):
            self._head = event
        await super()._send_h11_event(event)

    def can_hand_over(self) -> bool:
        head, stream = self._head, self.stream
        return (
            self.outlet is None
            and isinstance(stream, HTTPStream)
            and stream.scope["method"] == "GET"  # h11 frames a HEAD's body by length
            and isinstance(self.connection, h11.Connection)
            and self.connection.our_state is h11.SEND_BODY
            and self.connection.their_http_version == b"1.1"
            and head is not None
            and head.status_code == 200
            and not any(
                name in (b"content-length", b"content-encoding", b"transfer-encoding")
                for name, _ in head.headers
            )
        )

    async def stream_send(self, event: StreamEvent) -> None:
        if self.outlet is not None and isinstance(event, EndBody | StreamClosed):
            # The app's end of a body handed over: the outlet ends the response itself.
            if isinstance(event, StreamClosed):
                await self._close_stream()
            return
        await super().stream_send(event)

    async def handle(self, event: Event) -> None:
        if isinstance(event, Closed) and self.outlet is not None:
            outlet, self.outlet = self.outlet, None
            outlet.lost()
        await super().handle(event)

    async def end_handed_over_response(self) -> None:
        await self._send_h11_event(h11.EndOfMessage())
        await self._maybe_recycle()


def _transport_of(send: Callable[..., Any]) -> asyncio.WriteTransport | None:
    """The transport behind Hypercorn's `TCPServer.protocol_send`, which a protocol writes to."""
    server = getattr(send, "__self__", None)
    writer = getattr(server, "writer", None)
    return getattr(writer, "transport", None)


class DirectWSStream(WSStream):
    """Hypercorn's WebSocket stream, whose messages an `Outlet` may take over."""

    outlet: Outlet | None = None

    def can_hand_over(self) -> bool:
        # The client offering an extension means wsproto agreed to it (compression).
        return (
            self.outlet is None
            and self.state is ASGIWebsocketState.CONNECTED
            and not self.handshake.extensions
        )

    def hand_over(self, outlet: Outlet) -> None:
        self.outlet = outlet
        self.app_put = _dropped  # the app's handler has ended: nothing reads them

    async def app_send(self, message: Any) -> None:
        if self.outlet is not None and (message is None or message["type"] == "websocket.close"):
            return  # the app's end of a WebSocket handed over: the outlet closes it
        await super().app_send(message)

    async def handle(self, event: StreamEvent) -> None:
        if isinstance(event, StreamClosed) and self.outlet is not None:
            outlet, self.outlet = self.outlet, None
            outlet.lost()
        await super().handle(event)

    async def close_handed_over(self) -> None:
        close: WebsocketCloseEvent = {"type": "websocket.close", "code": 1000, "reason": None}
        await super().app_send(close)


async def _dropped(_message: Any) -> None:
    return None

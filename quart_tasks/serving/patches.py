"""What a worker changes in Hypercorn, and the fences that keep an upgrade from breaking it.

Written against Hypercorn 0.18 (`pyproject.toml` pins `~=0.18.0`). Every worker
that `quart-tasks serve` starts calls `install_serving_patches()` first: it
checks every fence below and only then replaces Hypercorn's two classes, so a
Hypercorn that changed what a patch touches stops the worker at start-up with
an error naming the patch. `hypercorn asgi:app` installs none of them; what it
lacks is listed in `asgi.py`.
"""

from __future__ import annotations

import hypercorn.asyncio.run
import hypercorn.protocol
import hypercorn.protocol.h11
import hypercorn.utils
from hypercorn.asyncio.task_group import TaskGroup
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.asyncio.worker_context import AsyncioSingleTask
from hypercorn.protocol import ProtocolWrapper
from hypercorn.protocol.h2 import H2Protocol
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.protocol.http_stream import HTTPStream
from hypercorn.protocol.ws_stream import Handshake, WSStream

from quart_tasks.serving.direct_streams import DirectStreamsH11Protocol, DirectWSStream
from quart_tasks.serving.fences import Fence, Touch, check_all
from quart_tasks.serving.stop_drain import DrainingH2Protocol, DrainingTCPServer

HYPERCORN = ("0.18.",)

PROMPT_CLOSE = Fence(
    name="prompt close (serving.client_close)",
    library="hypercorn",
    versions=HYPERCORN,
    unnecessary_when=(
        "Hypercorn stops a connection's idle timer once its client has closed, and "
        "half-closes rather than closes a connection whose request body is unread"
    ),
    touches=(
        Touch(hypercorn.asyncio.run, "TCPServer", "class"),
        Touch(hypercorn.asyncio.run.worker_serve, "TCPServer", "named in"),
        Touch(TCPServer, "_read_data", "async function", ("self",)),
        Touch(TCPServer, "_close", "async function", ("self",)),
        Touch(TCPServer.__init__, "idle_task", "named in"),
        Touch(TCPServer.__init__, "reader", "named in"),
        Touch(TCPServer.__init__, "writer", "named in"),
        Touch(TCPServer.__init__, "loop", "named in"),
        Touch(TCPServer.run, "protocol", "named in"),
        Touch(AsyncioSingleTask, "stop", "async function", ("self",)),
        Touch(ProtocolWrapper.__init__, "protocol", "named in"),
        Touch(H11Protocol.__init__, "connection", "named in"),
    ),
)

ONE_WRITE = Fence(
    name="one write per response (serving.response_writes, serving.h2_writes)",
    library="hypercorn",
    versions=HYPERCORN,
    unnecessary_when=(
        "Hypercorn writes a response's head together with its first body bytes, and over "
        "HTTP/2 ends the stream in the body's last frame"
    ),
    touches=(
        Touch(hypercorn.protocol, "H11Protocol", "class"),
        Touch(ProtocolWrapper.__init__, "H11Protocol", "named in"),
        Touch(H11Protocol, "_send_h11_event", "async function", ("self", "event")),
        Touch(H11Protocol.__init__, "send", "named in"),
        Touch(H11Protocol.__init__, "connection", "named in"),
        Touch(hypercorn.protocol, "H2Protocol", "class"),
        Touch(H2Protocol, "stream_send", "async function", ("self", "event")),
        Touch(H2Protocol, "_send_data", "async function", ("self", "stream_id")),
        Touch(H2Protocol.send_task, "_send_data", "named in"),
        Touch(H2Protocol._send_data, "stream_buffers", "named in"),
        Touch(H2Protocol._send_data, "priority", "named in"),
        Touch(H2Protocol._send_data, "remove_stream", "named in"),
        Touch(H2Protocol.stream_send, "response_headers", "named in"),
    ),
)

STOP_DRAIN = Fence(
    name="keep-alive connections answered while stopping (serving.stop_drain)",
    library="hypercorn",
    versions=HYPERCORN,
    unnecessary_when=(
        "Hypercorn answers with `Connection: close` once a worker is stopping, gives an "
        "idle keep-alive connection a moment for a request already on its way, and its "
        "idle timer honours a cancel that comes with the stop (asyncio.timeout, not wait_for); "
        "over HTTP/2, sends GOAWAY to an idle connection at the stop and refuses new streams "
        "with REFUSED_STREAM"
    ),
    touches=(
        Touch(TCPServer, "_idle_timeout", "async function", ("self",)),
        Touch(TCPServer, "_initiate_server_close", "async function", ("self",)),
        Touch(TCPServer.__init__, "context", "named in"),
        Touch(TCPServer.__init__, "config", "named in"),
        Touch(H11Protocol.__init__, "context", "named in"),
        Touch(H11Protocol, "_send_h11_event", "async function", ("self", "event")),
        Touch(hypercorn.asyncio.run.worker_serve, "terminated", "named in"),
        Touch(hypercorn.protocol, "H2Protocol", "class"),
        Touch(ProtocolWrapper.__init__, "H2Protocol", "named in"),
        Touch(ProtocolWrapper.handle, "H2Protocol", "named in"),
        Touch(H2Protocol, "_handle_events", "async function", ("self", "events")),
        Touch(H2Protocol, "_flush", "async function", ("self",)),
        Touch(H2Protocol, "idle", "attribute"),
        Touch(H2Protocol.__init__, "connection", "named in"),
        Touch(TCPServer.run, "protocol", "named in"),
    ),
)

WORKERS = Fence(
    name="supervised workers and shared accepts (serving.supervisor, serving.accepting)",
    library="hypercorn",
    versions=HYPERCORN,
    unnecessary_when=(
        "Hypercorn's master replaces a dead worker instead of stopping, and its uvloop "
        "worker takes a loop factory (or libuv honours a listener's own accept())"
    ),
    touches=(
        Touch(
            hypercorn.asyncio.run,
            "asyncio_worker",
            "function",
            ("config", "sockets", "shutdown_event"),
        ),
        Touch(
            hypercorn.asyncio.run,
            "_run",
            "function",
            ("main", "debug", "shutdown_trigger", "loop_factory"),
        ),
        Touch(
            hypercorn.asyncio.run,
            "worker_serve",
            "async function",
            ("app", "config", "sockets", "shutdown_trigger"),
        ),
        Touch(
            hypercorn.utils,
            "check_multiprocess_shutdown_event",
            "async function",
            ("shutdown_event", "sleep"),
        ),
        Touch(hypercorn.utils, "load_application", "function", ("path", "wsgi_max_body_size")),
    ),
)

DIRECT_STREAMS = Fence(
    name="long-lived responses written straight to their connection (serving.direct_streams)",
    library="hypercorn",
    versions=HYPERCORN,
    unnecessary_when=(
        "ASGI servers offer an app a way to write the same bytes to many connections' "
        "transports (no ASGI extension does, as of ASGI 3.0)"
    ),
    touches=(
        Touch(H11Protocol, "_create_stream", "async function", ("self", "request")),
        Touch(H11Protocol, "_maybe_recycle", "async function", ("self",)),
        Touch(H11Protocol, "_close_stream", "async function", ("self",)),
        Touch(H11Protocol, "stream_send", "async function", ("self", "event")),
        Touch(H11Protocol, "handle", "async function", ("self", "event")),
        Touch(H11Protocol.__init__, "stream", "named in"),
        Touch(H11Protocol.__init__, "task_group", "named in"),
        Touch(H11Protocol._create_stream, "HTTPStream", "named in"),
        Touch(H11Protocol._create_stream, "WSStream", "named in"),
        Touch(HTTPStream.handle, "scope", "named in"),
        Touch(HTTPStream.handle, "spawn_app", "named in"),
        Touch(hypercorn.protocol.h11, "WSStream", "class"),
        Touch(WSStream.handle, "scope", "named in"),
        Touch(WSStream.handle, "app_put", "named in"),
        Touch(WSStream._handle_events, "app_put", "named in"),
        Touch(WSStream, "app_send", "async function", ("self", "message")),
        Touch(WSStream, "handle", "async function", ("self", "event")),
        Touch(WSStream.__init__, "state", "named in"),
        Touch(WSStream.handle, "handshake", "named in"),
        Touch(Handshake.__init__, "extensions", "named in"),
        Touch(TCPServer.run, "protocol_send", "named in"),
        Touch(TCPServer.__init__, "writer", "named in"),
        Touch(TaskGroup, "spawn", "function"),
    ),
)

FENCES = (PROMPT_CLOSE, ONE_WRITE, STOP_DRAIN, WORKERS, DIRECT_STREAMS)


def install_serving_patches() -> None:
    """Check every fence, then have this process's Hypercorn worker serve through the patches."""
    check_all(FENCES)
    # Each class adds its patch to the one before: prompt close, then the stop's drain;
    # one write per response, then the stop's drain, then direct streams.
    hypercorn.asyncio.run.TCPServer = DrainingTCPServer  # type: ignore[attr-defined]
    hypercorn.protocol.H11Protocol = DirectStreamsH11Protocol  # type: ignore[attr-defined]
    hypercorn.protocol.h11.WSStream = DirectWSStream  # type: ignore[attr-defined]
    hypercorn.protocol.H2Protocol = DrainingH2Protocol  # type: ignore[attr-defined]

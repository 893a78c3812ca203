"""The event log as streams send it: each event framed once for every subscriber."""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property

from quart_tasks.serving.direct_streams import chunk, websocket_text
from quart_tasks.tasks.log.reads import LoggedEvent


@dataclass(frozen=True)
class Event:
    """A logged event at its position, framed once for every subscriber that receives it.

    `sse` and `ws` are what the ordinary path sends through ASGI; `sse_chunk` and
    `ws_frame` the same bytes as they go on the wire, written by the broker straight to
    the connections that handed it their responses (`serving.direct_streams`). Those
    two are made on first use: a back-filled event, or one no WebSocket receives,
    never needs them (a frame costs 2.5 µs).
    """

    position: int
    type: str
    owner_id: int
    payload: str
    sse: bytes
    ws: str

    @classmethod
    def of(cls, logged: LoggedEvent) -> Event:
        position, kind, payload = logged.position, logged.type, logged.payload
        return cls(
            position=position,
            type=kind,
            owner_id=logged.owner_id,
            payload=payload,
            sse=f"id: {position}\nevent: {kind}\ndata: {payload}\n\n".encode(),
            ws=f'{{"id":{position},"event":"{kind}","data":{payload}}}',
        )

    @cached_property
    def sse_chunk(self) -> bytes:
        return chunk(self.sse)

    @cached_property
    def ws_frame(self) -> bytes:
        return websocket_text(self.ws)


SSE_PREAMBLE = b"retry: 2000\n: connected\n\n"
"""An SSE stream's first bytes, once it is subscribed: reconnect after 2 s; the headers
go out at once."""

KEEP_ALIVE = b": keep-alive\n\n"
"""An SSE comment: what an idle stream gets every `EVENTS_HEARTBEAT_SECONDS`."""
KEEP_ALIVE_CHUNK = chunk(KEEP_ALIVE)


def reset_sse(position: int) -> bytes:
    return f"id: {position}\nevent: reset\ndata: {{}}\n\n".encode()


def reset_ws(position: int) -> str:
    return json.dumps({"id": position, "event": "reset", "data": {}})


def reset_frame(position: int, *, websocket: bool) -> bytes:
    """The reset as it goes on the wire: a WebSocket message, or an SSE event's chunk."""
    return websocket_text(reset_ws(position)) if websocket else chunk(reset_sse(position))

"""An HTTP/2 response in one write: its HEADERS, DATA and END_STREAM together.

Hypercorn 0.18 flushes an HTTP/2 response's HEADERS as soon as the app starts it, then
its DATA, then an empty DATA frame that ends the stream: three writes, and over TLS three
records, for a JSON answer that fits in one frame. As over HTTP/1.1
(`response_writes`), a head that gives a `Content-Length` (the body follows at once)
waits for the body, and the body's last chunk carries END_STREAM. A head without one
(an event stream) is flushed at once, as before.

S1 over TLS from 64 connections (`bench/http2.py`, alternating runs): one stream a
connection 2,814 → 3,311 requests/s, ten streams 3,311 → 3,705
(docs/performance/23-http2-writes.md).
"""

from __future__ import annotations

import contextlib

import h2.exceptions
from hypercorn.protocol.events import Event as StreamEvent
from hypercorn.protocol.events import Response
from hypercorn.protocol.h2 import H2Protocol


class OneWriteH2Protocol(H2Protocol):
    async def stream_send(self, event: StreamEvent) -> None:
        if isinstance(event, Response) and _has_body_length(event):
            status = (b":status", b"%d" % event.status_code)
            headers = [status, *event.headers, *self.config.response_headers("h2")]
            # The stream or connection may have closed meanwhile: as Hypercorn's own.
            with contextlib.suppress(h2.exceptions.StreamClosedError, h2.exceptions.ProtocolError):
                self.connection.send_headers(event.stream_id, headers)
            return  # flushed with the body, by the send task
        await super().stream_send(event)

    async def _send_data(self, stream_id: int) -> None:
        """Hypercorn's, but the last chunk ends the stream in the same frame and write."""
        try:
            chunk_size = max(
                0,
                min(
                    self.connection.local_flow_control_window(stream_id),
                    self.connection.max_outbound_frame_size,
                ),
            )
            data = await self.stream_buffers[stream_id].pop(chunk_size)
            complete = self.stream_buffers[stream_id].complete
            if data:
                self.connection.send_data(stream_id, data, end_stream=complete)
            else:
                self.priority.block(stream_id)
                if complete:
                    self.connection.end_stream(stream_id)
            if data or complete:
                await self._flush()
            if complete:
                del self.stream_buffers[stream_id]
                self.priority.remove_stream(stream_id)
        except (h2.exceptions.StreamClosedError, KeyError, h2.exceptions.ProtocolError):
            # The stream or connection closed while this waited to send: as Hypercorn does.
            await self.stream_buffers[stream_id].close()
            del self.stream_buffers[stream_id]
            self.priority.remove_stream(stream_id)


def _has_body_length(response: Response) -> bool:
    return any(name == b"content-length" and value != b"0" for name, value in response.headers)

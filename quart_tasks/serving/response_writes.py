"""Write a response's head and body to the socket in one call, not two.

Hypercorn 0.18 writes an HTTP/1.1 response's head as soon as the app starts
the response, then its body when the app sends it: two `send()` calls, and on
a small JSON answer two TCP segments, each paid for by the kernel on both
ends of the connection. When the head gives a `Content-Length`, the body
follows at once (Quart sends the whole of it straight after the head), so
the head is held and goes out with the body's first bytes, or with the end
of the message when there is no body (a HEAD request). A head without a
`Content-Length` (a stream, such as an event stream) is written at once, as
before, so that its client hears from it before the first event.

The head also gets its status's reason phrase (`200 OK`): Hypercorn leaves it empty
(`HTTP/1.1 200 `). RFC 9112 allows that, but nghttp2's HTTP/1.1 client (h2load)
counted every such answer as failed (bench/http2.py).
"""

from __future__ import annotations

from http import HTTPStatus

import h11
from hypercorn.events import RawData
from hypercorn.protocol.h11 import H11Protocol
from hypercorn.typing import H11SendableEvent

REASONS = {status.value: status.phrase.encode() for status in HTTPStatus}


class OneWriteH11Protocol(H11Protocol):
    _held_head: bytes | None = None

    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        if isinstance(event, h11.Response) and not event.reason:
            event = h11.Response(
                status_code=event.status_code,
                headers=event.headers,
                reason=REASONS.get(event.status_code, b""),
                http_version=event.http_version,
            )
        if isinstance(event, h11.Response) and _has_content_length(event):
            try:
                self._held_head = self.connection.send(event)
            except h11.LocalProtocolError:
                if self.connection.their_state != h11.ERROR:
                    raise
            return
        head, self._held_head = self._held_head, None
        if head is None:
            await super()._send_h11_event(event)
            return
        try:
            data = self.connection.send(event) or b""
        except h11.LocalProtocolError:
            if self.connection.their_state != h11.ERROR:
                raise
            data = b""
        await self.send(RawData(data=head + data))


def _has_content_length(response: h11.Response) -> bool:
    return any(name == b"content-length" for name, _value in response.headers)

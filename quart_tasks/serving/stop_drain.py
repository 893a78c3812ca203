"""How a stopping worker ends its keep-alive connections: by answering, not by dropping.

Hypercorn 0.18 closes every idle keep-alive connection the moment its worker
is told to stop (`context.terminated`), and closes the busy ones straight after
their responses, which went out without `Connection: close`. A client that
sends its next request on such a connection just then (nginx reuses its
upstream connections all the time) loses it: the socket is closed, or reset
because the request was unread. nginx retries only what is idempotent, so a
POST or a PATCH came back as 502; and every lost request counted as a failure
against the instance (`max_fails`), so a reload of one instance, then of the
other, marked both down and nginx answered 502 to everything for seconds
(docs/performance/21-reloads-behind-nginx.md).

So, once the worker is stopping, each response carries `Connection: close`,
telling its client not to send on the connection again, and an idle connection
is kept open for `IDLE_GRACE_SECONDS` more, long enough for a request already on
its way to arrive and be answered so. Only a connection left idle throughout is
closed unannounced.

HTTP/2 says the same with GOAWAY: no new stream on this connection. Hypercorn sent it
only once the connection's last stream had ended after the stop, and meanwhile reset
each new stream with NO_ERROR and set the client's stream limit to 0. httpx then failed
every request on the spot, without reading the socket, so it never saw the GOAWAY
either: 10,610 failed requests in 5 s from 4 clients, until the test gave up. Here
a connection idle at the stop gets its GOAWAY at once (h2 cannot answer streams after
a GOAWAY, so a busy one gets it when its last stream ends, as before), and a new stream
is refused with REFUSED_STREAM, which tells the client it was not processed and may be
sent again on a new connection (RFC 9113, 8.7).

The idle timer itself is Hypercorn's but for how it waits. Hypercorn waits for
the stop with `asyncio.wait_for`, which on Python 3.11 returns, rather than
raising, when it is cancelled just as what it waits for happens. A request that
arrived in the same turn of the event loop as the stop (under load, one in
several on each worker) could not stop the timer, and its connection was closed
with the request in flight. `asyncio.timeout` always honours the cancel.
"""

from __future__ import annotations

import asyncio

import h2.events
import h11
from h2.connection import ConnectionState
from h2.errors import ErrorCodes
from hypercorn.typing import H11SendableEvent

from quart_tasks.serving.client_close import PromptlyClosingTCPServer
from quart_tasks.serving.h2_writes import OneWriteH2Protocol
from quart_tasks.serving.response_writes import OneWriteH11Protocol

IDLE_GRACE_SECONDS = 1.0


class DrainingTCPServer(PromptlyClosingTCPServer):
    async def _idle_timeout(self) -> None:
        stopping = False
        try:
            async with asyncio.timeout(self.config.keep_alive_timeout):
                await self.context.terminated.wait()
            stopping = True
        except TimeoutError:
            pass  # idle for the whole keep-alive timeout
        if stopping:
            # A request that arrives now stops this timer (the connection is busy
            # again) and is answered with `Connection: close`.
            protocol = getattr(self.protocol, "protocol", None)
            if isinstance(protocol, DrainingH2Protocol):
                await protocol.go_away_if_idle()
            await asyncio.sleep(IDLE_GRACE_SECONDS)
        await asyncio.shield(self._initiate_server_close())


class DrainingH11Protocol(OneWriteH11Protocol):
    async def _send_h11_event(self, event: H11SendableEvent) -> None:
        if isinstance(event, h11.Response) and self.context.terminated.is_set():
            event = closing(event)
        await super()._send_h11_event(event)


class DrainingH2Protocol(OneWriteH2Protocol):
    async def _handle_events(self, events: list[h2.events.Event]) -> None:
        if self.context.terminated.is_set():
            refused = {
                event.stream_id
                for event in events
                if isinstance(event, h2.events.RequestReceived) and event.stream_id is not None
            }
            for stream_id in refused:
                self.connection.reset_stream(stream_id, error_code=ErrorCodes.REFUSED_STREAM)
            events = [event for event in events if getattr(event, "stream_id", None) not in refused]
            await self.go_away_if_idle()
        await super()._handle_events(events)

    async def go_away_if_idle(self) -> None:
        if self.idle and self.connection.state_machine.state is not ConnectionState.CLOSED:
            self.connection.close_connection()
            await self._flush()


def closing(response: h11.Response) -> h11.Response:
    """`response` with `Connection: close` in place of any `Connection` header it had."""
    headers = [(name, value) for name, value in response.headers if name != b"connection"]
    return h11.Response(
        status_code=response.status_code,
        headers=[*headers, (b"connection", b"close")],
        reason=response.reason,
        http_version=response.http_version,
    )

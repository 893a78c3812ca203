"""One broker per process feeds every local subscriber from the event log.

The broker keeps the position of the last event it dispatched, and on each
wake-up reads the log past it, once for all subscribers, and hands each event
to the subscribers allowed to see it. Wake-ups come from this process's own
rounds (`tasks.log.sequencer`), from PostgreSQL's NOTIFY (rounds taken by any
process, see `listener`), and from a poll every `EVENTS_POLL_SECONDS`, which
takes a round first (events whose writer died before its round) and also
covers a lost notification.

Each subscriber has a bounded queue. One that falls `EVENTS_QUEUE_SIZE` events
behind is cut off: its queue is emptied and given `RESET`, so a slow consumer
never slows the others or makes memory grow. A burst is dispatched a quarter of
a queue at a time, with a turn of the loop between, so that the streams that
keep up drain their queues meanwhile.

A stream served over HTTP/1.1 (or a WebSocket) hands its connection to the broker once
its back-fill is out (`hand_over`): from then on the broker writes each event's bytes,
framed once for everyone (`Event.sse_chunk`, `Event.ws_frame`), straight to the
connection's transport (`serving.direct_streams`), and the stream's own task ends.
Such a subscriber is behind when its transport holds more than `backlog_limit` bytes
the kernel has not taken, and is then reset the same way.
A fan-out yields to the loop every `FAN_OUT_SLICE` writes, so that requests are served
between its slices.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.live.log import KEEP_ALIVE_CHUNK, Event, reset_frame
from quart_tasks.serving.direct_streams import Outlet
from quart_tasks.storage.outages import unavailable
from quart_tasks.tasks.log.reads import bounds, read_after
from quart_tasks.web.metrics import LIVE_SUBSCRIBERS

logger = logging.getLogger(__name__)
BATCH = 500
FAN_OUT_SLICE = 1000
"""Direct writes between two turns of the loop: about 5 ms of a worker's time."""


class Signal(enum.Enum):
    RESET = "reset"
    """The subscriber fell too far behind: it must reload and resubscribe."""
    CLOSED = "closed"
    """The server is shutting down."""
    HEARTBEAT = "heartbeat"
    """Nothing for a while: say so, so that idle connections stay open."""


QueueItem = Event | Signal


class Subscription:
    """One stream's place at the broker: whose events it gets, and where they go."""

    __slots__ = ("after", "live", "outlet", "owner_id", "position", "queue", "websocket")

    def __init__(self, owner_id: int | None, position: int, size: int) -> None:
        self.owner_id = owner_id
        """None: an admin's, which gets everyone's events."""
        self.position = position
        """The last position dispatched before it subscribed."""
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue(size)
        """Where its events wait for its stream, until it is handed over."""
        self.outlet: Outlet | None = None
        """Its connection, once handed over: the broker writes its events there."""
        self.websocket = False
        """Once handed over: whether it takes frames, not chunks (kept: checked per event)."""
        self.after = position
        """Once handed over: the last position its stream sent (back-filled ones come twice)."""
        self.live = True

    @property
    def delivery(self) -> str:
        return "queued" if self.outlet is None else "direct"

    def end(self, signal: Signal) -> None:
        while not self.queue.empty():
            self.queue.get_nowait()
        self.queue.put_nowait(signal)


class Broker:
    def __init__(
        self,
        sessions: Callable[[], AsyncSession],
        *,
        queue_size: int,
        poll_seconds: float,
        heartbeat_seconds: float,
        backlog_limit: int = 64 * 1024,
        listener: Callable[[Callable[[], None]], Coroutine[Any, Any, None]] | None = None,
        sequence: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.queue_size = queue_size
        self.chunk = max(1, queue_size // 4)
        """Events dispatched between two turns of the loop."""
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
        self.backlog_limit = backlog_limit
        """Bytes a handed-over connection may hold unsent before its subscriber is reset."""
        self.listener = listener
        self.sequence = sequence
        """Takes a round (`Sequencer.take_round`): at start, and at every poll."""
        self.by_owner: dict[int, set[Subscription]] = {}
        self.everyone: set[Subscription] = set()
        self.position = 0
        self.woken = asyncio.Event()
        self.tasks: list[asyncio.Task[None]] = []
        self.started: asyncio.Future[None] | None = None
        self.closing = False

    @property
    def subscriber_count(self) -> int:
        return len(self._all())

    def wake(self) -> None:
        self.woken.set()

    async def subscribe(self, owner_id: int | None) -> Subscription:
        """A new subscription, receiving every event committed after this call returns."""
        await self._ensure_started()
        subscription = Subscription(owner_id, self.position, self.queue_size)
        if self.closing:
            subscription.end(Signal.CLOSED)
            subscription.live = False
            return subscription
        if owner_id is None:
            self.everyone.add(subscription)
        else:
            self.by_owner.setdefault(owner_id, set()).add(subscription)
        LIVE_SUBSCRIBERS.labels(subscription.delivery).inc()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        if not subscription.live:
            return
        subscription.live = False
        LIVE_SUBSCRIBERS.labels(subscription.delivery).dec()
        if subscription.owner_id is None:
            self.everyone.discard(subscription)
            return
        subscriptions = self.by_owner.get(subscription.owner_id)
        if subscriptions is not None:
            subscriptions.discard(subscription)
            if not subscriptions:
                del self.by_owner[subscription.owner_id]

    async def close(self) -> None:
        """End every stream, and stop reading the log."""
        self.end_streams()
        for task in self.tasks:
            task.cancel()
        for task in self.tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self.tasks.clear()

    def end_streams(self) -> None:
        """Tell every stream to finish, now and from now on: shutdown is near."""
        self.closing = True
        for subscription in self._all():
            self._end(subscription, Signal.CLOSED)

    def hand_over(self, subscription: Subscription, outlet: Outlet, *, after: int) -> bool:
        """Write `subscription`'s events straight to `outlet` from now on (SSE chunks, or
        WebSocket messages), skipping those up to `after`. False when the stream must go
        on as before: the connection cannot be handed over, or the subscription ended."""
        if not subscription.live:
            return False
        if not outlet.take_over(on_lost=lambda: self.unsubscribe(subscription)):
            return False
        waiting: list[Event] = []
        while not subscription.queue.empty():
            item = subscription.queue.get_nowait()
            if isinstance(item, Event):
                waiting.append(item)
        LIVE_SUBSCRIBERS.labels(subscription.delivery).dec()
        subscription.outlet, subscription.after = outlet, after
        subscription.websocket = outlet.websocket
        LIVE_SUBSCRIBERS.labels(subscription.delivery).inc()
        for event in waiting:
            self._write(subscription, event)
        return True

    async def _ensure_started(self) -> None:
        if self.started is None:
            self.started = asyncio.get_running_loop().create_future()
            try:
                # Events committed before the first subscriber are not its to receive.
                if self.sequence is not None:
                    await self.sequence()
                async with self.sessions() as session:
                    _, self.position = await bounds(session)
            except BaseException as error:
                self.started.set_exception(error)
                self.started.exception()  # retrieved: later callers re-raise it themselves
                self.started = None
                raise
            self.tasks.append(asyncio.create_task(self._run(), name="task-events-broker"))
            self.tasks.append(asyncio.create_task(self._beat(), name="task-events-heartbeat"))
            if self.listener is not None:
                self.tasks.append(asyncio.create_task(self.listener(self.wake)))
            self.started.set_result(None)
        await self.started

    async def _run(self) -> None:
        while True:
            polling = False
            try:
                async with asyncio.timeout(self.poll_seconds):
                    await self.woken.wait()
            except TimeoutError:
                polling = True
            self.woken.clear()
            try:
                if polling and self.sequence is not None:
                    await self.sequence()
                await self._dispatch_new_events()
            except Exception as error:  # the streams wait; the broker must not end
                if unavailable(error):
                    logger.warning(
                        "could not read task events (%s); retrying", type(error).__name__
                    )
                else:
                    logger.exception("reading task events failed; retrying")
                await asyncio.sleep(self.poll_seconds)

    async def _beat(self) -> None:
        """One timer for every stream, rather than one per stream and event."""
        while True:
            await asyncio.sleep(self.heartbeat_seconds)
            for subscription in self._all():
                outlet = subscription.outlet
                if outlet is None:
                    if subscription.queue.empty():
                        subscription.queue.put_nowait(Signal.HEARTBEAT)
                elif not subscription.websocket and outlet.backlog == 0 and not outlet.closed:
                    # (A WebSocket has no comment frame: an idle one gets nothing, as before.)
                    outlet.write(KEEP_ALIVE_CHUNK)

    def _all(self) -> list[Subscription]:
        return [*self.everyone, *(s for subs in self.by_owner.values() for s in subs)]

    async def _dispatch_new_events(self) -> None:
        written = 0
        while True:
            async with self.sessions() as session:
                page = await read_after(session, self.position, owner_id=None, limit=BATCH)
            for number, logged in enumerate(page.events, start=1):
                event = Event.of(logged)
                self.position = event.position
                for subscription in self._audience(event.owner_id):
                    if subscription.outlet is None:
                        self._enqueue(subscription, event)
                        continue
                    self._write(subscription, event)
                    written += 1
                    if written == FAN_OUT_SLICE:
                        written = 0
                        await asyncio.sleep(0)  # requests waiting are served between slices
                if number % self.chunk == 0:
                    # Let the streams drain their queues: a burst (the log read after
                    # an outage, a large round) must not reset subscribers that keep up.
                    await asyncio.sleep(0)
            self.position = max(self.position, page.reached)
            if page.complete:
                return

    def _audience(self, owner_id: int) -> list[Subscription]:
        return [*self.by_owner.get(owner_id, ()), *self.everyone]

    def _enqueue(self, subscription: Subscription, event: Event) -> None:
        try:
            subscription.queue.put_nowait(event)
        except asyncio.QueueFull:
            self._end(subscription, Signal.RESET)

    def _write(self, subscription: Subscription, event: Event) -> None:
        outlet = subscription.outlet
        if outlet is None or not subscription.live or event.position <= subscription.after:
            return  # ended during the fan-out's pause, or sent already by the back-fill
        if outlet.closed:
            self.unsubscribe(subscription)
        elif outlet.backlog > self.backlog_limit:
            self._end(subscription, Signal.RESET)
        else:
            outlet.write(event.ws_frame if subscription.websocket else event.sse_chunk)

    def _end(self, subscription: Subscription, signal: Signal) -> None:
        """Tell a stream it is over: it fell behind (RESET), or the server stops (CLOSED)."""
        self.unsubscribe(subscription)
        outlet = subscription.outlet
        if outlet is None:
            subscription.end(signal)
            return
        if signal is Signal.RESET and not outlet.closed:
            outlet.write(reset_frame(self.position, websocket=subscription.websocket))
        outlet.finish()

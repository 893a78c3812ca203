"""One broker per process feeds every local subscriber from the event log.

The broker keeps the position of the last event it dispatched, and on each
wake-up reads the log past it, once for all subscribers, and hands each event
to the subscribers allowed to see it. Wake-ups come from this process's own
rounds (`tasks.sequencer`), from PostgreSQL's NOTIFY (rounds taken by any
process, see `listener`), and from a poll every `EVENTS_POLL_SECONDS`, which
takes a round first (events whose writer died before its round) and also
covers a lost notification.

Each subscriber has a bounded queue. One that falls `EVENTS_QUEUE_SIZE` events
behind is cut off: its queue is emptied and given `RESET`, so a slow consumer
never slows the others or makes memory grow. A burst is dispatched a quarter of
a queue at a time, with a turn of the loop between, so that the streams that
keep up drain their queues meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import enum
import logging
from collections.abc import Awaitable, Callable, Coroutine
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.live.log import Event
from quart_tasks.storage.outages import unavailable
from quart_tasks.tasks.event_log import bounds, read_after

logger = logging.getLogger(__name__)
BATCH = 500


class Signal(enum.Enum):
    RESET = "reset"
    """The subscriber fell too far behind: it must reload and resubscribe."""
    CLOSED = "closed"
    """The server is shutting down."""
    HEARTBEAT = "heartbeat"
    """Nothing for a while: say so, so that idle connections stay open."""


QueueItem = Event | Signal


class Subscription:
    """One stream's place at the broker: whose events it gets, and its queue."""

    __slots__ = ("owner_id", "position", "queue")

    def __init__(self, owner_id: int | None, position: int, size: int) -> None:
        self.owner_id = owner_id
        """None: an admin's, which gets everyone's events."""
        self.position = position
        """The last position dispatched before it subscribed."""
        self.queue: asyncio.Queue[QueueItem] = asyncio.Queue(size)

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
        listener: Callable[[Callable[[], None]], Coroutine[Any, Any, None]] | None = None,
        sequence: Callable[[], Awaitable[object]] | None = None,
    ) -> None:
        self.sessions = sessions
        self.queue_size = queue_size
        self.chunk = max(1, queue_size // 4)
        """Events dispatched between two turns of the loop."""
        self.poll_seconds = poll_seconds
        self.heartbeat_seconds = heartbeat_seconds
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
        elif owner_id is None:
            self.everyone.add(subscription)
        else:
            self.by_owner.setdefault(owner_id, set()).add(subscription)
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
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
            self.unsubscribe(subscription)
            subscription.end(Signal.CLOSED)

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
                if subscription.queue.empty():
                    subscription.queue.put_nowait(Signal.HEARTBEAT)

    def _all(self) -> list[Subscription]:
        return [*self.everyone, *(s for subs in self.by_owner.values() for s in subs)]

    async def _dispatch_new_events(self) -> None:
        while True:
            async with self.sessions() as session:
                page = await read_after(session, self.position, owner_id=None, limit=BATCH)
            for number, logged in enumerate(page.events, start=1):
                self.dispatch(Event.of(logged))
                if number % self.chunk == 0:
                    # Let the streams drain their queues: a burst (the log read after
                    # an outage, a large round) must not reset subscribers that keep up.
                    await asyncio.sleep(0)
            self.position = max(self.position, page.reached)
            if page.complete:
                return

    def dispatch(self, event: Event) -> None:
        self.position = event.position
        for subscription in [*self.by_owner.get(event.owner_id, ()), *self.everyone]:
            try:
                subscription.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.unsubscribe(subscription)
                subscription.end(Signal.RESET)

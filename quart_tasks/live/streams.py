"""What a stream sends: back-fill from the log, then live events, heartbeats, and how it ends.

Shared by the SSE and WebSocket routes, which only differ in framing.
"""

from __future__ import annotations

from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from quart_tasks.live.broker import Broker, Signal
from quart_tasks.live.log import KEEP_ALIVE, SSE_PREAMBLE, Event, reset_sse, reset_ws
from quart_tasks.serving.direct_streams import Outlet
from quart_tasks.tasks.log.reads import bounds, read_after

BACKFILL_BATCH = 500


@dataclass(frozen=True, slots=True)
class Reset:
    """Start over: reload, then resume after `position` (the newest event's now)."""

    position: int


class Heartbeat:
    """Nothing happened for a while."""


HEARTBEAT = Heartbeat()


class Subscribed:
    """Every event committed from now on will come: a stream's first item.

    Only then may the client be told the stream is open, for a client that writes as
    soon as it is (a test, a sync) must see its own change come back."""


SUBSCRIBED = Subscribed()
Item = Event | Reset | Heartbeat | Subscribed


async def stream_events(
    broker: Broker,
    sessions: Callable[[], AsyncSession],
    *,
    owner_id: int | None,
    resume_after: int | None,
    outlet: Outlet | None = None,
) -> AsyncGenerator[list[Item]]:
    """The caller's events (everyone's when `owner_id` is None), in commit order, once each.

    First `SUBSCRIBED`; then, with `resume_after`, the logged events after that position,
    then live ones; without, only events committed from now on. Ends after a `Reset`, or when
    the broker closes the stream (shutdown). Items come in batches: whatever
    is waiting when the consumer is ready, sent in one write.

    With an `outlet`, the stream's connection, the live events go straight to it from
    the broker once the back-fill has been consumed (`Broker.hand_over`), and the
    iteration ends at once: the broker carries the response, or the WebSocket, on.
    """
    subscription = await broker.subscribe(owner_id)
    handed_over = False
    try:
        yield [SUBSCRIBED]
        last = subscription.position
        if resume_after is not None:
            async with sessions() as session:
                oldest, newest = await bounds(session)
            if resume_after < oldest - 1 or resume_after > newest:
                yield [Reset(newest)]  # purged from the log, or never in it
                return
            last = resume_after
            while True:
                async with sessions() as session:
                    page = await read_after(session, last, owner_id=owner_id, limit=BACKFILL_BATCH)
                last = page.reached
                if page.events:
                    yield [Event.of(logged) for logged in page.events]
                if page.complete:
                    break
        if outlet is not None and broker.hand_over(subscription, outlet, after=last):
            handed_over = True
            return
        queue = subscription.queue
        while True:
            waiting = [await queue.get()]
            while not queue.empty():
                waiting.append(queue.get_nowait())
            batch: list[Item] = []
            for item in waiting:
                if item is Signal.RESET:
                    yield [*batch, Reset(broker.position)]
                    return
                if item is Signal.CLOSED:
                    if batch:
                        yield batch
                    return
                if isinstance(item, Event) and item.position > last:  # back-filled come twice
                    last = item.position
                    batch.append(item)
            if batch:
                yield batch
            elif Signal.HEARTBEAT in waiting:
                yield [HEARTBEAT]
    finally:
        if not handed_over:
            broker.unsubscribe(subscription)


def sse_frames(batch: list[Item]) -> bytes:
    return b"".join(sse_frame(item) for item in batch)


def sse_frame(item: Item) -> bytes:
    if isinstance(item, Event):
        return item.sse
    if isinstance(item, Reset):
        return reset_sse(item.position)
    if isinstance(item, Subscribed):
        return SSE_PREAMBLE
    return KEEP_ALIVE


def ws_message(item: Event | Reset) -> str:
    if isinstance(item, Event):
        return item.ws
    return reset_ws(item.position)

"""The broker in process: backpressure, and streams ending at shutdown."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path

import pytest

from quart_tasks.live import broker as broker_module
from quart_tasks.live.broker import Broker
from quart_tasks.live.log import Event
from quart_tasks.live.streams import HEARTBEAT, SUBSCRIBED, Item, Reset, stream_events
from quart_tasks.services import services_of
from quart_tasks.serving.lifecycle import begin_draining
from quart_tasks.tasks.log.reads import LoggedEvent, LogPage
from tests.helpers.apps import ADMIN, bearer, serving, settings_for_test

QUEUE_SIZE = 8
CHANGES = 60


async def subscribed(stream: AsyncIterator[list[Item]]) -> AsyncIterator[list[Item]]:
    """`stream`, past its first item: subscribed."""
    assert await asyncio.wait_for(anext(stream), 5) == [SUBSCRIBED]
    return stream


async def test_a_slow_consumer_is_cut_off_while_a_fast_one_keeps_receiving(
    tmp_path: Path,
) -> None:
    async with serving(settings_for_test(tmp_path, EVENTS_QUEUE_SIZE=QUEUE_SIZE)) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        broker: Broker = services_of(app).live.broker

        def subscribe() -> AsyncIterator[list[Item]]:
            return stream_events(broker, broker.sessions, owner_id=None, resume_after=None)

        fast_seen: list[Event] = []
        fast_stream = await subscribed(subscribe())

        async def consume_fast() -> None:
            async for batch in fast_stream:
                for item in batch:
                    assert isinstance(item, Event)
                    fast_seen.append(item)
                if len(fast_seen) >= CHANGES:
                    return

        slow_stream = await subscribed(subscribe())
        fast = asyncio.create_task(consume_fast())
        slow_first = asyncio.ensure_future(anext(slow_stream))
        slow_backlog = []
        for n in range(CHANGES):
            created = await client.post("/api/tasks", json={"title": f"t{n}"}, headers=auth)
            assert created.status_code == 201
            slow_backlog.append(sum(s.queue.qsize() for s in broker.everyone))
            await asyncio.sleep(0)  # let the broker dispatch, and the fast one read
        await asyncio.wait_for(fast, 10)
        first = await slow_first
        rest = [item async for batch in slow_stream for item in batch]

    assert [event.payload for event in fast_seen][-1].count('"t59"') == 1
    assert len(fast_seen) == CHANGES
    assert first
    assert all(isinstance(item, Event) for item in first)
    assert len(rest) == 1, "the slow consumer got more than its reset"
    assert isinstance(rest[0], Reset)
    assert rest[0].position >= fast_seen[QUEUE_SIZE].position
    assert max(slow_backlog) <= QUEUE_SIZE + 1, "a queue grew past its bound"
    assert broker.subscriber_count == 0


async def test_draining_ends_every_stream_and_refuses_new_ones(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path)) as app:
        broker: Broker = services_of(app).live.broker
        streams = [
            await subscribed(
                stream_events(broker, broker.sessions, owner_id=owner, resume_after=None)
            )
            for owner in (None, 1, 2)
        ]
        pending = [asyncio.ensure_future(anext(stream)) for stream in streams]
        await asyncio.sleep(0)  # each waits for its next item
        begin_draining()
        ended = await asyncio.wait_for(asyncio.gather(*pending, return_exceptions=True), 5)
        late = stream_events(broker, broker.sessions, owner_id=None, resume_after=None)
        late_items = await asyncio.wait_for(_all(late), 5)

    assert all(isinstance(result, StopAsyncIteration) for result in ended), ended
    assert late_items == [SUBSCRIBED], "told it is open, and ended at once"
    assert broker.subscriber_count == 0


async def _all(stream: AsyncIterator[list[Item]]) -> list[Item]:
    return [item async for batch in stream for item in batch]


async def test_idle_streams_get_a_heartbeat_from_one_timer(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path, EVENTS_HEARTBEAT_SECONDS=0.2)) as app:
        broker: Broker = services_of(app).live.broker
        streams = [
            await subscribed(
                stream_events(broker, broker.sessions, owner_id=owner, resume_after=None)
            )
            for owner in (None, 7)
        ]
        beats = await asyncio.wait_for(asyncio.gather(*(anext(s) for s in streams)), 5)

    assert beats == [[HEARTBEAT], [HEARTBEAT]]


async def test_a_change_made_once_a_stream_says_it_is_open_reaches_it(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path)) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        broker: Broker = services_of(app).live.broker
        stream = stream_events(broker, broker.sessions, owner_id=None, resume_after=None)

        first = await asyncio.wait_for(anext(stream), 5)
        subscribers = broker.subscriber_count
        created = await client.post("/api/tasks", json={"title": "mine"}, headers=auth)
        (event,) = await asyncio.wait_for(anext(stream), 5)
        await stream.aclose()

    assert first == [SUBSCRIBED]
    assert subscribers == 1, "the stream said it was open before it was subscribed"
    assert isinstance(event, Event)
    assert f'"id":{(await created.get_json())["id"]},' in event.payload


ReadAfter = Callable[..., Awaitable[LogPage]]


def broker_over(monkeypatch: pytest.MonkeyPatch, read_after: ReadAfter, poll: float) -> Broker:
    """A broker whose log is `read_after` alone, starting from an empty one."""

    async def bounds(_session: object) -> tuple[int, int]:
        return 0, 0

    monkeypatch.setattr(broker_module, "read_after", read_after)
    monkeypatch.setattr(broker_module, "bounds", bounds)
    return Broker(
        lambda: contextlib.nullcontext(),  # type: ignore[arg-type, return-value]
        queue_size=QUEUE_SIZE,
        poll_seconds=poll,
        heartbeat_seconds=60,
    )


async def test_a_burst_larger_than_a_queue_reaches_a_consumer_that_keeps_up(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the log holds after an outage, read at once: a stream that drains its queue
    as events come gets them all, however many more than its queue holds."""
    burst = [
        LoggedEvent(position, "task.created", position, 1, f'{{"id":{position}}}')
        for position in range(1, 5 * QUEUE_SIZE + 1)
    ]

    async def read_after(_session: object, after: int, **_: object) -> LogPage:
        found = [event for event in burst if event.position > after]
        return LogPage(found, burst[-1].position, complete=True)

    broker = broker_over(monkeypatch, read_after, poll=60)
    subscription = await broker.subscribe(None)
    received: list[Event] = []

    async def consume() -> None:
        while len(received) < len(burst):
            item = await subscription.queue.get()
            assert isinstance(item, Event), f"{item} after {len(received)} events"
            received.append(item)

    consuming = asyncio.create_task(consume())
    try:
        await broker._dispatch_new_events()
        await asyncio.wait_for(consuming, 5)
    finally:
        await broker.close()

    assert [event.position for event in received] == [event.position for event in burst]


async def test_a_read_that_fails_does_not_end_the_broker(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whatever a read of the log raises, the broker logs it and reads again."""
    event = LoggedEvent(1, "task.created", 1, 1, '{"id":1}')
    reads = 0

    async def read_after(_session: object, after: int, **_: object) -> LogPage:
        nonlocal reads
        reads += 1
        if reads == 1:
            raise RuntimeError("a fault in the reading code")
        return LogPage([event] if after < 1 else [], 1, complete=True)

    broker = broker_over(monkeypatch, read_after, poll=0.05)
    subscription = await broker.subscribe(None)
    try:
        broker.wake()
        item = await asyncio.wait_for(subscription.queue.get(), 5)
    finally:
        await broker.close()

    assert reads >= 2
    assert isinstance(item, Event)
    assert item.position == 1

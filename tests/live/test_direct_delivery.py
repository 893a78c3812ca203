"""The broker writing straight to handed-over connections: what each gets, and when it ends."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from quart_tasks.live.broker import Broker
from quart_tasks.live.log import KEEP_ALIVE_CHUNK, Event, reset_sse, reset_ws
from quart_tasks.serving.direct_streams import Outlet, chunk, websocket_text
from quart_tasks.tasks.log.reads import LoggedEvent, LogPage
from tests.live.test_live_broker import ReadAfter, broker_over


class FakeOutlet(Outlet):
    """A connection as the broker sees it: the bytes written, the unsent backlog."""

    def __init__(self, *, accepts: bool = True, websocket: bool = False) -> None:
        self.accepts = accepts
        self.is_websocket = websocket
        self.data = bytearray()
        self.unsent = 0
        self.is_closed = False
        self.finished = False
        self.on_lost: Callable[[], None] | None = None
        self.wrote = asyncio.Event()

    def take_over(self, on_lost: Callable[[], None]) -> bool:
        self.on_lost = on_lost
        return self.accepts

    @property
    def websocket(self) -> bool:
        return self.is_websocket

    def write(self, data: bytes) -> None:
        self.data += data
        self.wrote.set()

    @property
    def backlog(self) -> int:
        return self.unsent

    @property
    def closed(self) -> bool:
        return self.is_closed

    def finish(self) -> None:
        self.finished = True


def logged(position: int, owner_id: int = 1) -> LoggedEvent:
    return LoggedEvent(position, "task.created", position, owner_id, f'{{"id":{position}}}')


class Log:
    """A log the test appends to; the broker reads it as it would the table."""

    def __init__(self) -> None:
        self.events: list[LoggedEvent] = []

    async def read_after(self, _session: object, after: int, **_: object) -> LogPage:
        found = [event for event in self.events if event.position > after]
        return LogPage(found, max((e.position for e in self.events), default=after), True)


@pytest.fixture
def log() -> Log:
    return Log()


@pytest.fixture
def broker(monkeypatch: pytest.MonkeyPatch, log: Log) -> Broker:
    read_after: ReadAfter = log.read_after
    made = broker_over(monkeypatch, read_after, poll=60)
    made.backlog_limit = 1000
    return made


async def publish(broker: Broker, log: Log, *events: LoggedEvent) -> None:
    log.events += events
    await broker._dispatch_new_events()


def sse(*positions: int) -> bytes:
    return b"".join(Event.of(logged(position)).sse_chunk for position in positions)


async def test_events_waiting_at_the_hand_over_come_first_and_back_filled_ones_once(
    broker: Broker, log: Log
) -> None:
    subscription = await broker.subscribe(None)
    await publish(broker, log, logged(1), logged(2), logged(3))  # queued meanwhile
    outlet = FakeOutlet()

    # The back-fill sent up to 2: 3 comes from the queue, 4 live, 1 and 2 not again.
    assert broker.hand_over(subscription, outlet, after=2)
    await publish(broker, log, logged(4))

    assert bytes(outlet.data) == sse(3, 4)
    assert subscription.queue.empty()


async def test_each_subscriber_gets_only_what_it_may_see(broker: Broker, log: Log) -> None:
    mine, theirs, admin = FakeOutlet(), FakeOutlet(), FakeOutlet()
    for owner, outlet in ((1, mine), (2, theirs), (None, admin)):
        broker.hand_over(await broker.subscribe(owner), outlet, after=0)

    await publish(broker, log, logged(1, owner_id=1), logged(2, owner_id=2))

    assert bytes(mine.data) == sse(1)
    assert bytes(theirs.data) == Event.of(logged(2, owner_id=2)).sse_chunk
    assert bytes(admin.data) == sse(1) + Event.of(logged(2, owner_id=2)).sse_chunk


async def test_a_connection_behind_by_more_than_the_limit_is_reset_and_ended(
    broker: Broker, log: Log
) -> None:
    slow, fast = FakeOutlet(), FakeOutlet()
    for outlet in (slow, fast):
        broker.hand_over(await broker.subscribe(None), outlet, after=0)
    await publish(broker, log, logged(1))
    slow.unsent = broker.backlog_limit + 1

    await publish(broker, log, logged(2), logged(3))

    assert bytes(slow.data) == sse(1) + chunk(reset_sse(2))
    assert slow.finished
    assert bytes(fast.data) == sse(1, 2, 3)
    assert not fast.finished
    assert broker.subscriber_count == 1


async def test_a_websocket_behind_gets_its_reset_message_and_its_close(
    broker: Broker, log: Log
) -> None:
    outlet = FakeOutlet(websocket=True)
    subscription = await broker.subscribe(None)
    broker.hand_over(subscription, outlet, after=0)
    await publish(broker, log, logged(1))
    outlet.unsent = broker.backlog_limit + 1

    await publish(broker, log, logged(2))

    assert bytes(outlet.data) == Event.of(logged(1)).ws_frame + websocket_text(reset_ws(2))
    assert outlet.finished  # its close follows
    assert broker.subscriber_count == 0


async def test_a_client_gone_is_unsubscribed(broker: Broker, log: Log) -> None:
    outlet = FakeOutlet()
    broker.hand_over(await broker.subscribe(None), outlet, after=0)
    assert outlet.on_lost is not None

    outlet.on_lost()
    await publish(broker, log, logged(1))

    assert broker.subscriber_count == 0
    assert outlet.data == b""


async def test_a_connection_closing_is_unsubscribed_and_written_no_more(
    broker: Broker, log: Log
) -> None:
    outlet = FakeOutlet()
    broker.hand_over(await broker.subscribe(None), outlet, after=0)
    outlet.is_closed = True

    await publish(broker, log, logged(1))

    assert broker.subscriber_count == 0
    assert outlet.data == b""
    assert not outlet.finished


async def test_a_connection_that_will_not_hand_over_leaves_the_queue_as_it_was(
    broker: Broker, log: Log
) -> None:
    subscription = await broker.subscribe(None)
    await publish(broker, log, logged(1))

    assert not broker.hand_over(subscription, FakeOutlet(accepts=False), after=0)
    await publish(broker, log, logged(2))

    assert [subscription.queue.get_nowait(), subscription.queue.get_nowait()] == [
        Event.of(logged(1)),
        Event.of(logged(2)),
    ]


async def test_shutdown_ends_every_handed_over_stream(broker: Broker) -> None:
    sse_outlet, ws_outlet = FakeOutlet(), FakeOutlet(websocket=True)
    broker.hand_over(await broker.subscribe(None), sse_outlet, after=0)
    broker.hand_over(await broker.subscribe(3), ws_outlet, after=0)

    broker.end_streams()

    assert sse_outlet.finished
    assert ws_outlet.finished
    assert sse_outlet.data == ws_outlet.data == b"", "at shutdown, nothing more is sent"
    assert broker.subscriber_count == 0


async def test_an_idle_stream_with_nothing_unsent_gets_the_heartbeat(broker: Broker) -> None:
    broker.heartbeat_seconds = 0.05  # the first subscription starts the broker's timer
    idle, backed_up, websocket = FakeOutlet(), FakeOutlet(), FakeOutlet(websocket=True)
    backed_up.unsent = 10
    for outlet in (idle, backed_up):
        broker.hand_over(await broker.subscribe(None), outlet, after=0)
    broker.hand_over(await broker.subscribe(None), websocket, after=0)
    await asyncio.wait_for(idle.wrote.wait(), 5)
    await broker.close()

    beats = len(idle.data) // len(KEEP_ALIVE_CHUNK)
    assert beats >= 1
    assert bytes(idle.data) == KEEP_ALIVE_CHUNK * beats
    assert backed_up.data == b"", "bytes still on their way keep it open already"
    assert websocket.data == b"", "a WebSocket has no comment frame"


async def test_a_large_fan_out_lets_the_loop_turn(
    broker: Broker, log: Log, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Requests waiting are served between slices of a broadcast to thousands."""
    from quart_tasks.live import broker as broker_module

    monkeypatch.setattr(broker_module, "FAN_OUT_SLICE", 10)
    outlets = [FakeOutlet() for _ in range(35)]
    for outlet in outlets:
        broker.hand_over(await broker.subscribe(None), outlet, after=0)
    turns = 0

    async def count_turns() -> None:
        nonlocal turns
        while True:
            await asyncio.sleep(0)
            turns += 1

    counting = asyncio.create_task(count_turns())
    await asyncio.sleep(0)
    before = turns
    await publish(broker, log, logged(1))
    counting.cancel()

    assert turns - before >= 3
    assert all(bytes(outlet.data) == sse(1) for outlet in outlets)

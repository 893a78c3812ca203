"""Live changes over real HTTP: order, completeness, resume, isolation, WebSocket parity."""

from __future__ import annotations

import asyncio
import json
import signal
import time
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from tests.helpers.apps import LiveServer
from tests.helpers.servers import fresh_database_url, postgres_database, served, two_workers
from tests.helpers.streams import Received, admin_headers, event_stream, new_user

pytestmark = pytest.mark.slow


def websocket_url(base_url: str, **params: str) -> str:
    query = "&".join(f"{key}={value}" for key, value in params.items())
    return f"ws://{urlsplit(base_url).netloc}/api/tasks/ws" + (f"?{query}" if query else "")


async def test_a_subscriber_sees_every_change_in_commit_order_and_resumes_without_gap(
    live: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        auth = await new_user(http)
        async with event_stream(http, auth) as stream:
            created = (await http.post("/api/tasks", json={"title": "a"}, headers=auth)).json()
            url = f"/api/tasks/{created['id']}"
            await http.patch(url, json={"done": True}, headers=auth)
            await http.patch(url, json={"done": True}, headers=auth)  # no change, no event
            await http.put(url, json={"title": "b", "done": False}, headers=auth)
            await http.delete(url, headers=auth)
            seen = await stream.take(4)

        assert [event.event for event in seen] == [
            "task.created",
            "task.updated",
            "task.updated",
            "task.deleted",
        ]
        ids = [event.event_id for event in seen]
        assert ids == sorted(ids)
        assert len(set(ids)) == 4
        assert seen[0].data == created
        assert seen[1].data["done"] is True
        assert seen[2].data["title"] == "b"
        assert seen[3].data == {"id": created["id"]}

        # Changes made while disconnected come first on resume, then live ones.
        missed = [
            (await http.post("/api/tasks", json={"title": f"m{n}"}, headers=auth)).json()
            for n in range(3)
        ]
        resume = {**auth, "Last-Event-ID": str(seen[-1].id)}
        async with event_stream(http, resume) as stream:
            live_one = (await http.post("/api/tasks", json={"title": "live"}, headers=auth)).json()
            resumed = await stream.take(4)
            assert await stream.quiet(0.5)
        async with event_stream(http, auth, since=seen[0].id) as stream:
            from_since = await stream.take(7)

    assert [event.data for event in resumed] == [*missed, live_one]
    assert all(event.event == "task.created" for event in resumed)
    assert [event.id for event in resumed] == sorted({event.event_id for event in resumed})
    assert (resumed[0].id or 0) > (seen[-1].id or 0)
    assert [event.id for event in from_since] == [*ids[1:], *(event.id for event in resumed)]


async def test_concurrent_writers_are_seen_in_commit_order_once_each(live: LiveServer) -> None:
    limits = httpx.Limits(max_connections=20)
    async with httpx.AsyncClient(base_url=live.base_url, timeout=30, limits=limits) as http:
        users = [await new_user(http, "writer") for _ in range(4)]
        admin = await admin_headers(http)
        async with event_stream(http, admin) as stream:
            answers = await asyncio.gather(
                *(
                    http.post("/api/tasks", json={"title": f"c{n}"}, headers=users[n % 4])
                    for n in range(40)
                )
            )
            seen = await stream.take(40, within=10)
        async with event_stream(
            http,
            {**admin, "Last-Event-ID": str(seen[0].id - 1)},  # type: ignore[operator]
        ) as stream:
            replayed = await stream.take(40, within=10)

    created = {answer.json()["id"] for answer in answers if answer.status_code == 201}
    assert len(created) == 40
    assert {event.data["id"] for event in seen} == created
    ids = [event.event_id for event in seen]
    assert ids == sorted(ids), "not in commit order"
    assert len(set(ids)) == 40, "duplicated"
    assert [(e.id, e.data) for e in replayed] == [(e.id, e.data) for e in seen], (
        "the log's order differs from the order events were delivered in"
    )


async def test_a_user_never_receives_another_users_events(live: LiveServer) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        alice, bob, admin = await new_user(http), await new_user(http), await admin_headers(http)
        async with (
            event_stream(http, bob) as bobs,
            event_stream(http, admin) as admins,
            event_stream(http, alice) as alices,
        ):
            for n in range(3):
                await http.post("/api/tasks", json={"title": f"alice {n}"}, headers=alice)
            mine = (await http.post("/api/tasks", json={"title": "bob"}, headers=bob)).json()
            bob_saw = await bobs.next()
            alice_saw = await alices.take(3)
            admin_saw = await admins.take(4)
            assert await alices.quiet(0.5)
            assert await bobs.quiet(0.5)

    assert bob_saw.data == mine
    assert [event.data["title"] for event in alice_saw] == ["alice 0", "alice 1", "alice 2"]
    assert [event.data["title"] for event in admin_saw] == [
        "alice 0",
        "alice 1",
        "alice 2",
        "bob",
    ]


async def test_the_token_may_come_as_a_query_parameter_on_the_streams_only(
    live: LiveServer,
) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        auth = await new_user(http)
        token = auth["Authorization"].removeprefix("Bearer ")
        async with event_stream(http, {}, access_token=token) as stream:
            created = (await http.post("/api/tasks", json={"title": "q"}, headers=auth)).json()
            assert (await stream.next()).data == created
        elsewhere = await http.get("/api/tasks", params={"access_token": token})
        anonymous = await http.get("/api/tasks/events")
        forged = await http.get("/api/tasks/events", params={"access_token": "not-a-token"})
        bad_resume = await http.get(
            "/api/tasks/events", headers={**auth, "Last-Event-ID": "yesterday"}
        )
        huge_resume = await http.get(
            "/api/tasks/events", headers={**auth, "Last-Event-ID": "9" * 5000}
        )

    assert elsewhere.status_code in (400, 401)  # unknown parameter, or no Authorization
    assert anonymous.status_code == 401
    assert forged.status_code == 401
    assert bad_resume.status_code == 400
    assert bad_resume.json()["error"]["code"] == "validation_error"
    assert huge_resume.status_code == 400


@pytest.mark.parametrize(
    "compression",
    ["deflate", None],
    ids=["offering compression", "not offering compression"],
)
async def test_websocket_messages_match_the_event_stream(
    live: LiveServer, compression: Literal["deflate"] | None
) -> None:
    async with httpx.AsyncClient(base_url=live.base_url, timeout=10) as http:
        auth = await new_user(http)
        token = auth["Authorization"].removeprefix("Bearer ")
        url = websocket_url(live.base_url, access_token=token)
        async with (
            websockets.connect(url, compression=compression) as socket,
            event_stream(http, auth) as stream,
        ):
            created = (await http.post("/api/tasks", json={"title": "ws"}, headers=auth)).json()
            await http.patch(f"/api/tasks/{created['id']}", json={"done": True}, headers=auth)
            await http.delete(f"/api/tasks/{created['id']}", headers=auth)
            sse = await stream.take(3)
            messages = [json.loads(await asyncio.wait_for(socket.recv(), 5)) for _ in range(3)]
        # A header works as well, and `since` resumes.
        async with websockets.connect(
            websocket_url(live.base_url, since=str(sse[0].id)),
            additional_headers=auth,
            compression=compression,
        ) as socket:
            resumed = [json.loads(await asyncio.wait_for(socket.recv(), 5)) for _ in range(2)]

    assert [Received(m["id"], m["event"], m["data"]) for m in messages] == sse
    assert [m["id"] for m in resumed] == [event.id for event in sse[1:]]


@pytest.mark.parametrize("token", [None, "not-a-token"], ids=["no token", "forged token"])
async def test_a_websocket_without_a_valid_token_is_closed_as_a_policy_violation(
    live: LiveServer, token: str | None
) -> None:
    params = {} if token is None else {"access_token": token}
    async with websockets.connect(websocket_url(live.base_url, **params)) as socket:
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(socket.recv(), 5)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 1008


async def test_an_id_older_than_the_log_gets_reset(tmp_path: Path) -> None:
    with (
        fresh_database_url(tmp_path) as url,
        served(url, tmp_path, EVENTS_RETENTION_COUNT="3", EVENTS_PURGE_EVERY="1") as server,
    ):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            auth = await admin_headers(http)
            async with event_stream(http, auth) as stream:
                for n in range(8):
                    await http.post("/api/tasks", json={"title": f"t{n}"}, headers=auth)
                seen = await stream.take(8)
            newest = seen[-1].id
            async with event_stream(http, {**auth, "Last-Event-ID": str(seen[0].id)}) as stale:
                reset = await stale.next()
                closed = await stale.ended()
            async with event_stream(http, {**auth, "Last-Event-ID": str(seen[-2].id)}) as kept:
                resumed = await kept.next()
            async with event_stream(http, {**auth, "Last-Event-ID": str(10**9)}) as future:
                from_elsewhere = await future.next()

    assert (reset.event, reset.id) == ("reset", newest)
    assert closed
    assert (resumed.event, resumed.id) == ("task.created", newest)
    assert from_elsewhere.event == "reset"


async def test_sigterm_ends_open_streams_so_shutdown_is_quick(tmp_path: Path) -> None:
    with fresh_database_url(tmp_path) as url, served(url, tmp_path, two_workers) as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            auth = await admin_headers(http)
            streams = [event_stream(http, auth) for _ in range(6)]
            opened = [await stream.__aenter__() for stream in streams]
            token = auth["Authorization"].removeprefix("Bearer ")
            url = websocket_url(server.base_url, access_token=token)
            sockets = [  # offering compression (declined), and not
                await websockets.connect(url, compression=compression)
                for compression in ("deflate", None)
            ]
            started = time.monotonic()
            server.process.send_signal(signal.SIGTERM)
            ended = [await stream.ended(within=10) for stream in opened]
            for socket in sockets:
                with pytest.raises(ConnectionClosed):
                    await asyncio.wait_for(socket.recv(), 10)
            exit_code = await asyncio.to_thread(server.process.wait, 20)
            took = time.monotonic() - started
            for stream in streams:
                await stream.__aexit__(None, None, None)

    assert all(ended)
    assert exit_code == 0
    assert took < 5, f"shutdown took {took:.1f} s: the graceful timeout is 30 s"


async def test_a_change_through_one_instance_reaches_a_subscriber_of_another(
    tmp_path: Path,
) -> None:
    """Two servers on one PostgreSQL database: LISTEN/NOTIFY carries the change across."""
    async with postgres_database() as url:
        slow_poll = "30"  # seconds: so only a notification can be this quick
        with (
            served(url, tmp_path, EVENTS_POLL_SECONDS=slow_poll) as one,
            served(url, tmp_path, EVENTS_POLL_SECONDS=slow_poll) as other,
        ):
            async with (
                httpx.AsyncClient(base_url=one.base_url, timeout=10) as first,
                httpx.AsyncClient(base_url=other.base_url, timeout=10) as second,
            ):
                auth = await admin_headers(first)
                delays = []
                async with event_stream(second, await admin_headers(second)) as stream:
                    for n in range(5):
                        started = time.monotonic()
                        created = await first.post(
                            "/api/tasks", json={"title": f"across {n}"}, headers=auth
                        )
                        event = await stream.next(within=5)
                        delays.append(time.monotonic() - started)
                        assert event.data == created.json()

    assert max(delays) < 1.0, delays

"""Streams the broker writes straight to their connections, against the ordinary path, on the wire.

Two servers on one database, one with `EVENTS_DIRECT_WRITES` and one without; a raw
HTTP/1.1 subscriber of each sees the same back-fill, the same live changes, and the
same end at SIGTERM, and must have received the same bytes.
"""

from __future__ import annotations

import asyncio
import json
import signal
from pathlib import Path

import httpx
import pytest
import websockets

from tests.helpers.servers import fresh_database_url, served
from tests.helpers.streams import (
    RawStream,
    admin_headers,
    subscribers_by_delivery,
    until_delivered,
)
from tests.live.test_live import websocket_url

pytestmark = pytest.mark.slow

VARYING = (b"date:", b"x-request-id:")
"""Head lines that differ between any two responses."""


def comparable(data: bytes) -> bytes:
    head, _, body = data.partition(b"\r\n\r\n")
    kept = [line for line in head.split(b"\r\n") if not line.lower().startswith(VARYING)]
    return b"\r\n".join(kept) + b"\r\n\r\n" + body


async def test_the_bytes_on_the_wire_are_the_ordinary_paths(tmp_path: Path) -> None:
    poll = "0.05"  # on SQLite the other server hears of changes by polling
    with (
        fresh_database_url(tmp_path) as url,
        served(
            url,
            tmp_path,
            EVENTS_DIRECT_WRITES="true",
            EVENTS_POLL_SECONDS=poll,
            METRICS_ENABLED="true",
        ) as direct,
        served(
            url,
            tmp_path,
            EVENTS_DIRECT_WRITES="false",
            EVENTS_POLL_SECONDS=poll,
            METRICS_ENABLED="true",
        ) as ordinary,
    ):
        async with httpx.AsyncClient(base_url=direct.base_url, timeout=10) as http:
            auth = await admin_headers(http)
            before = [
                (await http.post("/api/tasks", json={"title": f"before {n}"}, headers=auth)).json()
                for n in range(3)
            ]
            # Resume after the first event: the back-fill is the other two.
            first_event = {**auth, "Last-Event-ID": "1"}
            streams = [await RawStream.open(server, first_event) for server in (direct, ordinary)]
            sockets = [
                await websockets.connect(
                    websocket_url(server.base_url, since="1"),
                    additional_headers=auth,
                    compression="deflate",
                )
                for server in (direct, ordinary)
            ]
            for stream in streams:
                await stream.until(f'"title":"{before[-1]["title"]}"'.encode())
            await until_delivered(direct, {"direct": 2, "queued": 0})  # a stream, a socket
            queued = await subscribers_by_delivery(ordinary)
            task_id = before[0]["id"]
            for change in ({"title": "live"}, {"done": True}, {"title": "é" * 200}):
                made = await http.patch(f"/api/tasks/{task_id}", json=change, headers=auth)
                assert made.status_code == 200
                expected = made.content.decode()[-20:].encode()
                for stream in streams:  # one change at a time: one chunk each
                    await stream.until(expected)
            await http.delete(f"/api/tasks/{task_id}", headers=auth)
            for stream in streams:
                await stream.until(b"event: task.deleted")
            messages = [
                [await asyncio.wait_for(socket.recv(), 5) for _ in range(6)] for socket in sockets
            ]
            extensions = [
                [extension.name for extension in socket.protocol.extensions] for socket in sockets
            ]
            for socket in sockets:
                await socket.close()
        for server in (direct, ordinary):
            server.process.send_signal(signal.SIGTERM)
        direct_bytes, ordinary_bytes = [await stream.to_the_end() for stream in streams]

    assert queued == {"queued": 2}
    assert direct_bytes.startswith(b"HTTP/1.1 200 OK\r\n")
    assert b"\r\ntransfer-encoding: chunked\r\n" in direct_bytes.lower()
    assert direct_bytes.endswith(b"\r\n0\r\n\r\n"), "the response ends, then the connection"
    assert direct_bytes.count(b"event: task.") == 6
    assert comparable(direct_bytes) == comparable(ordinary_bytes)
    # WebSockets: the same messages; compression only where the ordinary path serves.
    assert messages[0] == messages[1]
    assert [json.loads(message)["event"] for message in messages[0]][-1] == "task.deleted"
    assert extensions == [[], ["permessage-deflate"]]

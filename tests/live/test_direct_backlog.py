"""A handed-over stream whose client stops reading, on a real connection and server.

The broker's writes go to the connection's transport; once the client's socket and the
kernel hold all they will (kept small here: the kernel's autotuning would take megabytes),
the transport keeps the rest. Past `EVENTS_BACKLOG_BYTES` the broker ends that stream
with a reset, and the other subscribers keep receiving.
"""

from __future__ import annotations

import uuid
from pathlib import Path

import httpx
import pytest

from tests.helpers.servers import fresh_database_url, served_with_send_buffers
from tests.helpers.streams import RawStream, admin_headers, subscribers_by_delivery, until_delivered

pytestmark = pytest.mark.slow

BACKLOG_BYTES = 65536
"""The default. A batch's events, about 35 KB, go out in one fan-out: a subscriber that
reads must never hold more than the limit, one that does not soon holds more."""
BATCHES = 10  # of 100 events of about 350 bytes: far more than the buffers on the way


async def test_a_subscriber_that_stops_reading_is_reset_and_the_others_go_on(
    tmp_path: Path,
) -> None:
    with (
        fresh_database_url(tmp_path) as url,
        served_with_send_buffers(
            url,
            tmp_path,
            send_buffer=4096,
            EVENTS_BACKLOG_BYTES=str(BACKLOG_BYTES),
            METRICS_ENABLED="true",
        ) as server,
    ):
        async with httpx.AsyncClient(base_url=server.base_url, timeout=30) as http:
            auth = await admin_headers(http)
            stalled = await RawStream.open(server, auth, receive_buffer=4096)
            reading = await RawStream.open(server, auth)
            await until_delivered(server, {"direct": 2, "queued": 0})

            for batch in range(BATCHES):
                titles = [f"{batch:03}-{n:03} " + "x" * 190 for n in range(100)]
                creates = [
                    {"type": "create", "uuid": str(uuid.uuid4()), "args": {"title": title}}
                    for title in titles
                ]
                made = await http.post("/api/tasks/batch", json={"commands": creates}, headers=auth)
                assert made.status_code == 200, made.text
                await reading.until(titles[-1].encode())
                if (await subscribers_by_delivery(server))["direct"] == 1:
                    break
            else:
                pytest.fail(f"{BATCHES * 100} events, and the stalled stream still subscribed")

            await stalled.until(b"\r\n0\r\n\r\n")  # read at last: up to the end of the response
            stalled.writer.close()
            stalled_bytes = bytes(stalled.data)
            last = await http.post("/api/tasks", json={"title": "after"}, headers=auth)
            await reading.until(f'"id":{last.json()["id"]},'.encode())

    events, reset = stalled_bytes.rsplit(b"event: reset", 1)
    assert events.startswith(b"HTTP/1.1 200 OK\r\n")
    assert events.count(b"event: task.created") >= 1, "it received events before it stopped"
    assert reset.endswith(b"\r\n0\r\n\r\n"), "the reset, then the end of the response"
    assert b"event: task." not in reset
    assert reading.data.count(b"event: task.created") == (batch + 1) * 100 + 1
    assert b"event: reset" not in reading.data

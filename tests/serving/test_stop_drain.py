"""A stopping worker answers what arrives on its keep-alive connections (`Connection: close`)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import h11
import pytest

from quart_tasks.serving.stop_drain import IDLE_GRACE_SECONDS, closing
from quart_tasks.serving.supervisor import DRAIN_SECONDS
from tests.helpers.servers import Server, fresh_database_url, quart_tasks_serve, served

pytestmark = pytest.mark.alone  # times a worker's stop


def test_closing_replaces_any_connection_header() -> None:
    response = h11.Response(
        status_code=200, headers=[(b"content-length", b"2"), (b"connection", b"keep-alive")]
    )

    closed = closing(response)

    assert list(closed.headers) == [(b"content-length", b"2"), (b"connection", b"close")]
    assert closed.status_code == 200


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter
) -> tuple[int, dict[bytes, bytes]]:
    """One GET /healthz on the connection: its status and headers (its body read)."""
    writer.write(b"GET /healthz HTTP/1.1\r\nHost: test\r\n\r\n")
    await writer.drain()
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 10)
    status_line, *lines = head.decode().split("\r\n")
    headers = {
        name.strip().lower().encode(): value.strip().encode()
        for name, value in (line.split(":", 1) for line in lines if line)
    }
    await reader.readexactly(int(headers[b"content-length"]))
    return int(status_line.split()[1]), headers


async def told_to_stop(server: Server, count: int) -> None:
    """Until the supervisor has told `count` old workers to stop (SIGHUP)."""
    deadline = time.monotonic() + 30
    while server.output().count("serves; stopping worker") < count:
        assert time.monotonic() < deadline, "no old worker was told to stop"
        await asyncio.sleep(0.02)


@pytest.mark.slow
async def test_a_request_on_an_idle_connection_of_a_stopping_worker_is_answered(
    tmp_path: Path,
) -> None:
    with fresh_database_url(tmp_path) as url, served(url, tmp_path, quart_tasks_serve) as server:
        host, port = server.base_url.removeprefix("http://").split(":")
        reader, writer = await asyncio.open_connection(host, int(port))
        try:
            first, _ = await exchange(reader, writer)  # now idle, kept alive
            server.process.send_signal(signal.SIGHUP)
            await told_to_stop(server, 1)
            # Past the stop's own drain, inside the idle connection's grace.
            await asyncio.sleep(DRAIN_SECONDS + IDLE_GRACE_SECONDS / 2)
            second, headers = await exchange(reader, writer)
            closed_after = await asyncio.wait_for(reader.read(), 10)
        finally:
            writer.close()

    assert first == 200
    assert second == 200, "the request on the kept-alive connection was not answered"
    assert headers.get(b"connection") == b"close"
    assert closed_after == b"", "the worker closes the connection after that answer"

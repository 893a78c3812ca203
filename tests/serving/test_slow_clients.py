"""Idle and stalled connections do not starve normal clients of a real server."""

from __future__ import annotations

import asyncio
import statistics
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers.apps import ADMIN
from tests.helpers.servers import fresh_database_url, served, wait_for_workers

pytestmark = [pytest.mark.slow, pytest.mark.alone]  # its p99 bound assumes a quiet machine

IDLE_CONNECTIONS = 500
STALLED_CONNECTIONS = 100
SAMPLES = 300
MAX_P99_SECONDS = 0.25


async def idle_keep_alive(host: str, port: int) -> asyncio.StreamWriter:
    """A connection that made one request, got its answer, and now stays open, silent."""
    reader, writer = await asyncio.open_connection(host, port)
    writer.write(f"GET /healthz HTTP/1.1\r\nHost: {host}\r\n\r\n".encode())
    await writer.drain()
    head = await reader.readuntil(b"\r\n\r\n")
    assert head.startswith(b"HTTP/1.1 200"), head
    return writer


async def stalled(host: str, port: int, number: int) -> asyncio.StreamWriter:
    """A connection that sends part of a request (headers or body) and then nothing."""
    _, writer = await asyncio.open_connection(host, port)
    if number % 2:
        writer.write(f"GET /api/tasks HTTP/1.1\r\nHost: {host}\r\nAuthoriz".encode())
    else:
        writer.write(
            f"POST /api/tasks HTTP/1.1\r\nHost: {host}\r\nContent-Type: application/json\r\n"
            'Content-Length: 100\r\n\r\n{"title": "never fin'.encode()
        )
    await writer.drain()
    return writer


async def latencies(http: httpx.AsyncClient, path: str, auth: dict[str, str]) -> list[float]:
    seconds = []
    for _ in range(SAMPLES):
        started = time.perf_counter()
        answer = await http.get(path, headers=auth)
        seconds.append(time.perf_counter() - started)
        assert answer.status_code == 200, answer.text
    return seconds


def p99(seconds: list[float]) -> float:
    return statistics.quantiles(seconds, n=100)[98]


def rss_kib(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    raise AssertionError("no VmRSS")


async def test_idle_and_half_sent_connections_do_not_starve_normal_clients(
    tmp_path: Path,
) -> None:
    with fresh_database_url(tmp_path) as url, served(url, tmp_path) as server:
        (worker,) = await wait_for_workers(server, 1)
        address = urlsplit(server.base_url)
        host, port = address.hostname or "127.0.0.1", address.port or 80
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            auth = {
                "Authorization": "Bearer "
                + (await http.post("/api/login", json=ADMIN)).json()["access_token"]
            }
            task = (await http.post("/api/tasks", json={"title": "read me"}, headers=auth)).json()
            path = f"/api/tasks/{task['id']}"
            await latencies(http, path, auth)  # warm-up
            alone = await latencies(http, path, auth)
            rss_before = rss_kib(worker)

            idle = await asyncio.gather(
                *(idle_keep_alive(host, port) for _ in range(IDLE_CONNECTIONS))
            )
            stalls = await asyncio.gather(
                *(stalled(host, port, number) for number in range(STALLED_CONNECTIONS))
            )
            crowded = await latencies(http, path, auth)
            rss_after = rss_kib(worker)
            still_open = sum(not writer.is_closing() for writer in [*idle, *stalls])
            for writer in [*idle, *stalls]:
                writer.close()

    per_connection = (rss_after - rss_before) / (IDLE_CONNECTIONS + STALLED_CONNECTIONS)
    print(
        f"\nnormal GET p99: {p99(alone) * 1000:.1f} ms alone, "
        f"{p99(crowded) * 1000:.1f} ms beside {IDLE_CONNECTIONS} idle and "
        f"{STALLED_CONNECTIONS} stalled connections; "
        f"worker RSS {rss_before / 1024:.0f} → {rss_after / 1024:.0f} MiB "
        f"({per_connection:.1f} KiB per connection)"
    )
    assert still_open == IDLE_CONNECTIONS + STALLED_CONNECTIONS
    assert p99(crowded) < MAX_P99_SECONDS

"""Idle keep-alive connections: closed on time, and at once when the worker stops."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import hypercorn.asyncio.run
import pytest
from hypercorn.asyncio import serve
from hypercorn.asyncio.tcp_server import TCPServer
from hypercorn.config import Config

from quart_tasks.client_close import PromptlyClosingTCPServer

from .live import free_port

REQUEST = b"GET / HTTP/1.1\r\nHost: test\r\n\r\n"


async def answer(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] != "http":
        return
    if scope["path"] == "/slow":
        await asyncio.sleep(0.6)
    await send(
        {"type": "http.response.start", "status": 200, "headers": [(b"content-length", b"2")]}
    )
    await send({"type": "http.response.body", "body": b"ok"})


@asynccontextmanager
async def server(
    monkeypatch: pytest.MonkeyPatch, keep_alive_timeout: float, tcp_server: type[TCPServer]
) -> AsyncIterator[tuple[int, asyncio.Event, asyncio.Task[None]]]:
    monkeypatch.setattr(hypercorn.asyncio.run, "TCPServer", tcp_server)
    port = free_port()
    config = Config()
    config.bind = [f"127.0.0.1:{port}"]
    config.keep_alive_timeout = keep_alive_timeout
    config.accesslog = config.errorlog = None
    stop = asyncio.Event()
    serving = asyncio.ensure_future(serve(answer, config, shutdown_trigger=stop.wait))  # type: ignore[arg-type]
    for _ in range(100):
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
        except OSError:
            await asyncio.sleep(0.05)
        else:
            writer.close()
            break
    try:
        yield port, stop, serving
    finally:
        stop.set()
        await asyncio.wait_for(serving, 10)


async def answered(port: int, path: str = "/") -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    await ask(reader, writer, path)
    return reader, writer


async def ask(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, path: str = "/") -> None:
    writer.write(REQUEST.replace(b"GET / ", f"GET {path} ".encode()))
    head = await asyncio.wait_for(reader.readuntil(b"\r\n\r\n"), 5)
    assert head.startswith(b"HTTP/1.1 200"), head
    assert await reader.readexactly(2) == b"ok"


async def closed_after(reader: asyncio.StreamReader, within: float) -> float:
    """Seconds until the server closes the connection."""
    started = time.perf_counter()
    assert await asyncio.wait_for(reader.read(), within) == b""
    return time.perf_counter() - started


async def test_an_idle_connection_is_closed_once_the_keep_alive_timeout_has_passed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with server(monkeypatch, 0.4, PromptlyClosingTCPServer) as (port, _, _):
        reader, _ = await answered(port)
        assert 0.3 < await closed_after(reader, within=5) < 2


async def test_requests_and_their_handling_keep_a_connection_open(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with server(monkeypatch, 0.4, PromptlyClosingTCPServer) as (port, _, _):
        reader, writer = await answered(port)
        for _ in range(4):  # 1.2 s of requests, each within the timeout of the last
            await asyncio.sleep(0.3)
            await ask(reader, writer)
        await ask(reader, writer, "/slow")  # handled for longer than the timeout
        await ask(reader, writer)


async def test_idle_connections_close_at_once_when_the_worker_stops(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    async with server(monkeypatch, 60, PromptlyClosingTCPServer) as (port, stop, serving):
        connections = [await answered(port) for _ in range(5)]
        stop.set()
        for reader, _writer in connections:
            assert await closed_after(reader, within=5) < 2
        await asyncio.wait_for(serving, 5)


@pytest.mark.parametrize(
    ("tcp_server", "tasks_per_idle_connection"),
    [(TCPServer, 3), (PromptlyClosingTCPServer, 1)],
    ids=["hypercorn: its read loop, an idle task and its wait_for", "a timer: the read loop"],
)
async def test_an_idle_connection_holds_no_task_but_its_read_loop(
    monkeypatch: pytest.MonkeyPatch, tcp_server: type[TCPServer], tasks_per_idle_connection: int
) -> None:
    async with server(monkeypatch, 60, tcp_server) as (port, _, _):
        await asyncio.sleep(0.1)
        before = len(asyncio.all_tasks())
        connections = [await answered(port) for _ in range(10)]
        await asyncio.sleep(0.1)  # every idle period has begun
        assert len(asyncio.all_tasks()) - before == 10 * tasks_per_idle_connection
        for _, writer in connections:
            writer.close()

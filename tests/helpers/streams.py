"""Clients for the live routes: an SSE reader over httpx, and users of their own."""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import socket
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx

from tests.helpers.apps import ADMIN
from tests.helpers.servers import Server

PASSWORD = "a password long enough"


@dataclass(frozen=True)
class Received:
    id: int | None
    event: str
    data: Any

    @property
    def event_id(self) -> int:
        """The `id:` line's value, which every task event carries."""
        assert self.id is not None, f"{self.event} came without an id"
        return self.id


@dataclass
class EventStream:
    """An open `GET /api/tasks/events`, read event by event."""

    response: httpx.Response
    lines: AsyncIterator[str]

    async def next(self, within: float = 5) -> Received:
        async with asyncio.timeout(within):
            fields: dict[str, str] = {}
            async for line in self.lines:
                if not line:
                    if "event" in fields or "data" in fields:
                        event_id = fields.get("id")
                        return Received(
                            int(event_id) if event_id else None,
                            fields.get("event", "message"),
                            json.loads(fields.get("data", "null")),
                        )
                    continue
                name, _, value = line.partition(":")
                if name:  # an empty name is a comment (the keep-alive)
                    fields[name] = value.removeprefix(" ")
            raise EOFError("the stream ended")

    async def take(self, count: int, within: float = 5) -> list[Received]:
        return [await self.next(within) for _ in range(count)]

    async def quiet(self, seconds: float) -> bool:
        """Whether no event comes for `seconds`."""
        try:
            await self.next(seconds)
        except TimeoutError:
            return True
        return False

    async def ended(self, within: float = 5) -> bool:
        """Whether the server closes the stream before another event comes."""
        try:
            await self.next(within)
        except EOFError:
            return True
        return False


@contextlib.asynccontextmanager
async def event_stream(
    http: httpx.AsyncClient, headers: dict[str, str], **params: Any
) -> AsyncIterator[EventStream]:
    """Open the stream and wait until it is subscribed (its first comment arrived)."""
    async with http.stream("GET", "/api/tasks/events", headers=headers, params=params) as response:
        assert response.status_code == 200, (await response.aread()).decode()
        assert response.headers["Content-Type"].startswith("text/event-stream")
        stream = EventStream(response, response.aiter_lines())
        async with asyncio.timeout(5):
            async for line in stream.lines:
                if line == ": connected":
                    break
        yield stream


async def new_user(http: httpx.AsyncClient, prefix: str = "live") -> dict[str, str]:
    """A user of its own (the live server's database is shared), as auth headers."""
    admin = (await http.post("/api/login", json=ADMIN)).json()
    name = f"{prefix}-{uuid.uuid4().hex[:10]}"
    created = await http.post(
        "/api/users",
        json={"username": name, "password": PASSWORD},
        headers={"Authorization": f"Bearer {admin['access_token']}"},
    )
    assert created.status_code == 201, created.text
    login = (await http.post("/api/login", json={"username": name, "password": PASSWORD})).json()
    return {"Authorization": f"Bearer {login['access_token']}"}


async def admin_headers(http: httpx.AsyncClient) -> dict[str, str]:
    token = (await http.post("/api/login", json=ADMIN)).json()["access_token"]
    return {"Authorization": f"Bearer {token}"}


class RawStream:
    """`GET /api/tasks/events` on a socket of its own: every byte the server sends."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.data = bytearray()

    @classmethod
    async def open(
        cls, server: Server, headers: dict[str, str], receive_buffer: int | None = None
    ) -> RawStream:
        """The stream, subscribed; with `receive_buffer`, the bytes this side holds unread
        (kernel and reader) stay near that many, so that a stream not read falls behind."""
        host, port = server.base_url.removeprefix("http://").split(":")
        if receive_buffer is None:
            reader, writer = await asyncio.open_connection(host, int(port))
        else:
            sock = socket.socket()
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
            sock.setblocking(False)
            await asyncio.get_running_loop().sock_connect(sock, (host, int(port)))
            reader, writer = await asyncio.open_connection(sock=sock, limit=receive_buffer // 2)
        lines = [f"{name}: {value}" for name, value in headers.items()]
        request = "\r\n".join(["GET /api/tasks/events HTTP/1.1", f"host: {host}", *lines])
        writer.write(request.encode() + b"\r\n\r\n")
        stream = cls(reader, writer)
        await stream.until(b": connected\n\n")
        return stream

    async def until(self, expected: bytes) -> None:
        async with asyncio.timeout(10):
            while expected not in self.data:
                data = await self.reader.read(65536)
                if not data:
                    raise EOFError(f"closed before {expected!r}: {bytes(self.data)!r}")
                self.data += data

    async def to_the_end(self) -> bytes:
        async with asyncio.timeout(10):
            while data := await self.reader.read(65536):
                self.data += data
        self.writer.close()
        return bytes(self.data)


async def subscribers_by_delivery(server: Server) -> dict[str, int]:
    """The server's subscribers as its metrics count them, by delivery."""
    async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
        text = (await http.get("/metrics")).text
    found = re.findall(r'^quart_tasks_live_subscribers\{delivery="(\w+)"\} (\S+)$', text, re.M)
    return {delivery: int(float(value)) for delivery, value in found}


async def until_delivered(server: Server, expected: dict[str, int]) -> None:
    """Wait for the subscriber counts: a stream is handed over just after it opens."""
    for _ in range(100):
        if await subscribers_by_delivery(server) == expected:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"subscribers: {await subscribers_by_delivery(server)}")

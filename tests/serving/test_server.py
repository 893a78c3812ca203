"""The API over real HTTP, served by Hypercorn through `quart-tasks serve`."""

import asyncio
import time
from pathlib import Path
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers.servers import CHECKOUT, fresh_database_url, hypercorn_asgi_app, running_server

pytestmark = pytest.mark.slow


async def test_login_create_and_list_over_http(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as http:
        login = await http.post("/api/login", json={"username": "admin", "password": "admin"})
        assert login.status_code == 200
        auth = {"Authorization": f"Bearer {login.json()['access_token']}"}

        created = await http.post("/api/tasks", json={"title": "over the wire"}, headers=auth)
        assert created.status_code == 201
        task = created.json()
        assert created.headers["Location"] == f"/api/tasks/{task['id']}"

        listed = await http.get("/api/tasks", params={"q": "WIRE"}, headers=auth)
        assert listed.status_code == 200
        assert task in listed.json()["items"]
        assert listed.headers["X-Request-ID"]


async def _open(live_server: str) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
    address = urlsplit(live_server)
    assert address.hostname is not None
    assert address.port is not None
    return await asyncio.open_connection(address.hostname, address.port)


def _post_head(length: int) -> bytes:
    return (
        b"POST /api/tasks HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
        b"Content-Length: %d\r\n\r\n" % length
    )


async def test_a_client_still_sending_a_large_body_reads_the_413(live_server: str) -> None:
    """Closed at once with the body still arriving, the socket would be reset, and the
    client would lose the answer with it."""
    reader, writer = await _open(live_server)
    body = b"x" * (8 * 1024 * 1024)
    try:
        writer.write(_post_head(len(body)))
        writer.write(body)
        await asyncio.wait_for(writer.drain(), 10)
        answer = await asyncio.wait_for(reader.read(), 10)  # to the server's close
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert b"payload_too_large" in answer


async def test_a_client_that_never_finishes_its_body_is_closed_soon(live_server: str) -> None:
    reader, writer = await _open(live_server)
    started = time.monotonic()
    try:
        writer.write(_post_head(8 * 1024 * 1024) + b"x" * 65536)
        await writer.drain()
        answer = await asyncio.wait_for(reader.read(), 15)  # the rest never comes
    finally:
        writer.close()
    assert answer.startswith(b"HTTP/1.1 413 ")
    assert time.monotonic() - started < 10


def test_hypercorn_serves_asgi_app_from_the_checkout(tmp_path: Path) -> None:
    with (
        fresh_database_url(tmp_path) as url,
        running_server(url, CHECKOUT, hypercorn_asgi_app) as base_url,
    ):
        response = httpx.post(
            f"{base_url}/api/login", json={"username": "admin", "password": "admin"}, timeout=10
        )

    assert response.status_code == 200
    assert response.json()["token_type"] == "Bearer"


async def test_early_answers_keep_the_connection_usable(live_server: str) -> None:
    """A 401 given before the body is read must not leave a connection that resets."""
    dropped = 0
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as http:
        statuses = set()
        for _ in range(300):
            try:
                answer = await http.post(
                    "/api/tasks", json={"title": "x" * 100}, headers={"Authorization": "Bearer no"}
                )
            except httpx.TransportError:
                dropped += 1
                continue
            statuses.add(answer.status_code)
        too_large = await http.post(
            "/api/tasks",
            content=b"x" * (2 * 1024 * 1024),
            headers={"Content-Type": "application/json"},
        )

    assert dropped == 0, f"{dropped} of 300 requests found their connection closed"
    assert statuses == {401}
    assert too_large.status_code == 413
    assert too_large.headers["Connection"] == "close"

"""Hostile input against a real Hypercorn process: always a 4xx, never a 5xx or a hang."""

from __future__ import annotations

import socket
from urllib.parse import urlsplit

import httpx
import pytest

from tests.helpers.apps import ADMIN, LiveServer

pytestmark = pytest.mark.slow


@pytest.fixture
def auth(live: LiveServer) -> dict[str, str]:
    token = httpx.post(f"{live.base_url}/api/login", json=ADMIN, timeout=10).json()
    return {"Authorization": f"Bearer {token['access_token']}"}


def nested(depth: int) -> bytes:
    return b'{"title": ' + b"[" * depth + b"]" * depth + b"}"


BODIES = {
    "10 MB": b'{"title": "' + b"x" * 10_000_000 + b'"}',
    "nested 100,000 deep": nested(100_000),
    "nested arrays 5,000 deep": b"[" * 5000 + b"]" * 5000,
    "invalid UTF-8": b'{"title": "\xff\xfe\xfd"}',
    "NUL in a title": b'{"title": "nul\\u0000byte"}',
    "raw NUL byte": b'{"title": "nul\x00byte"}',
    "lone surrogate": b'{"title": "\\ud800"}',
    "huge number": b'{"title": "x", "done": 1' + b"0" * 5000 + b"}",
    "duplicate keys": b'{"title": "a", "title": "b", "done": "x"}',
}


@pytest.mark.parametrize("body", BODIES.values(), ids=BODIES.keys())
def test_hostile_bodies_are_4xx(live: LiveServer, auth: dict[str, str], body: bytes) -> None:
    response = httpx.post(
        f"{live.base_url}/api/tasks",
        content=body,
        headers={**auth, "Content-Type": "application/json"},
        timeout=30,
    )

    assert 400 <= response.status_code < 500, response.text[:200]
    assert response.json()["error"]["code"] in {
        "bad_request",
        "validation_error",
        "payload_too_large",
    }


PATHS = [
    "/api/tasks/" + "9" * 30,
    "/api/tasks/18446744073709551616",
    "/api/tasks/-9223372036854775809",
    "/api/tasks/%00",
    "/api/tasks/%ff",
    "/api/tasks?page=" + "9" * 5000,
    "/api/tasks?page_size=" + "9" * 5000,
    "/api/tasks?q=" + "x" * 100_000,
    "/api/tasks?q=%00",
    "/api/tasks?q=%ff%fe",
    "/api/tasks?cursor=" + "A" * 100_000,
    "/api/tasks?" + "&".join(f"p{n}=1" for n in range(5000)),
    "/api/tasks?sort=%00",
]


def raw_status(base_url: str, head: bytes) -> int:
    """Send a request as raw bytes (clients refuse to send some of these) and read
    the status code of the answer."""
    address = urlsplit(base_url)
    with socket.create_connection((address.hostname, address.port), timeout=30) as sock:
        sock.sendall(head)
        answer = b""
        while b"\r\n" not in answer:
            chunk = sock.recv(4096)
            if not chunk:
                break
            answer += chunk
    return int(answer.split(b" ", 2)[1])


def get_head(path: str, headers: dict[str, str]) -> bytes:
    lines = [f"GET {path} HTTP/1.1", "Host: localhost", "Connection: close"]
    lines += [f"{name}: {value}" for name, value in headers.items()]
    return ("\r\n".join(lines) + "\r\n\r\n").encode("latin-1")


@pytest.mark.parametrize("path", PATHS, ids=[p[:40] for p in PATHS])
def test_hostile_urls_are_4xx(live: LiveServer, auth: dict[str, str], path: str) -> None:
    status = raw_status(live.base_url, get_head(path, auth))

    assert 400 <= status < 500, status


HEADERS = {
    "huge token": ("GET", "/api/tasks", {"Authorization": "Bearer " + "x" * 100_000}),
    "huge ETag": ("PATCH", "/api/tasks/1", {"If-Match": '"' + "9" * 5000 + '"'}),
    "huge Idempotency-Key": ("POST", "/api/tasks", {"Idempotency-Key": "k" * 10_000}),
}


@pytest.mark.parametrize(("method", "path", "headers"), HEADERS.values(), ids=HEADERS.keys())
def test_hostile_headers_are_4xx(
    live: LiveServer, auth: dict[str, str], method: str, path: str, headers: dict[str, str]
) -> None:
    response = httpx.request(
        method,
        f"{live.base_url}{path}",
        json={"done": True, "title": "t"},
        headers={**auth, **headers},
        timeout=30,
    )

    assert 400 <= response.status_code < 500, (response.status_code, response.text[:200])


def test_a_nul_in_a_header_is_not_a_5xx(live: LiveServer, auth: dict[str, str]) -> None:
    status = raw_status(live.base_url, get_head("/api/tasks", {**auth, "X-Request-ID": "\x00bad"}))

    assert status < 500


def test_a_half_sent_request_does_not_block_others(live: LiveServer) -> None:
    address = urlsplit(live.base_url)
    stalled = socket.create_connection((address.hostname, address.port))
    try:
        stalled.sendall(b"POST /api/tasks HTTP/1.1\r\nHost: x\r\nContent-Length: 1000\r\n\r\n{")
        response = httpx.get(f"{live.base_url}/healthz", timeout=5)
    finally:
        stalled.close()

    assert response.status_code == 200

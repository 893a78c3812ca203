"""nginx in front of two `quart-tasks serve` instances, configured by deploy/nginx.conf."""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import re
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.helpers.servers import (
    CHECKOUT,
    free_port,
    fresh_database_url,
    quart_tasks_serve,
    served,
)
from tests.helpers.support import redis_reachable, require
from tests.test_readme import json_documents, run_verbatim, walkthrough

pytestmark = pytest.mark.slow

NGINX = shutil.which("nginx") or "/usr/sbin/nginx"
ADMIN = {"username": "admin", "password": "admin"}


@dataclass(frozen=True)
class Proxied:
    proxy: str
    instances: tuple[str, str]


def nginx_config(workdir: Path, upstreams: list[str], port: int) -> Path:
    """deploy/nginx.conf as written, but for these instances and this port, in a main
    configuration of its own (files under `workdir`)."""
    site = (CHECKOUT / "deploy" / "nginx.conf").read_text()
    servers = "".join(
        f"    server {address} max_fails=3 fail_timeout=5s;\n" for address in upstreams
    )
    site, replaced = re.subn(r"(    server 10\.0\.0\.\d+:8000[^\n]*\n)+", servers, site)
    assert replaced == 1, "deploy/nginx.conf's upstream servers were not found"
    assert "listen 80;" in site
    site = site.replace("listen 80;", f"listen 127.0.0.1:{port};")
    temp = "\n".join(
        f"    {kind}_temp_path {workdir / kind};"
        for kind in ("client_body", "proxy", "fastcgi", "uwsgi", "scgi")
    )
    main = f"""
{"user root;" if os.geteuid() == 0 else ""}
daemon off;
worker_processes 1;
pid {workdir / "nginx.pid"};
error_log {workdir / "error.log"} warn;
events {{ worker_connections 1024; }}
http {{
    access_log off;
{temp}
{site}
}}
"""
    path = workdir / "nginx.conf"
    path.write_text(main)
    return path


@contextlib.contextmanager
def nginx(config: Path, port: int) -> Iterator[None]:
    process = subprocess.Popen(
        [NGINX, "-p", str(config.parent), "-c", str(config)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        deadline = time.monotonic() + 10
        while True:
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port), 1):
                break
            if process.poll() is not None or time.monotonic() > deadline:
                errors = process.stderr.read().decode() if process.stderr else ""
                raise RuntimeError(f"nginx did not start: {errors}")
            time.sleep(0.05)
        yield
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Proxied]:
    require(Path(NGINX).exists(), "nginx is not installed (apt-get install nginx)")
    require(redis_reachable(), "Redis is not reachable at 127.0.0.1:6379")
    # As deployed: the instances trust the proxy, and share their counters through Redis.
    settings = {
        "TRUSTED_PROXIES": "127.0.0.1",
        "REDIS_URL": "redis://127.0.0.1:6379/0",
        "RATE_LIMIT_KEY_PREFIX": f"nginx-test-{uuid.uuid4().hex}",
    }
    workdir = tmp_path_factory.mktemp("nginx")
    port = free_port()
    with contextlib.ExitStack() as stack:
        url = stack.enter_context(fresh_database_url(workdir))
        one, two = (
            stack.enter_context(served(url, CHECKOUT, quart_tasks_serve, **settings))
            for _ in range(2)
        )
        upstreams = [server.base_url.removeprefix("http://") for server in (one, two)]
        stack.enter_context(nginx(nginx_config(workdir, upstreams, port), port))
        yield Proxied(f"http://127.0.0.1:{port}", (one.base_url, two.base_url))


async def token_at(base_url: str) -> str:
    async with httpx.AsyncClient(base_url=base_url, timeout=10) as http:
        answer = await http.post("/api/login", json=ADMIN)
        assert answer.status_code == 200, answer.text
        return str(answer.json()["access_token"])


def test_the_readme_walkthrough_runs_through_the_proxy(proxied: Proxied) -> None:
    output = run_verbatim(walkthrough(), proxied.proxy)

    assert "HTTP/1.1 201" in output
    assert output.rstrip().endswith('{"error":{"code":"not_found","message":"Task not found"}}')
    batch, _, _ = json_documents(run_verbatim(walkthrough("sync walkthrough"), proxied.proxy))
    assert [result["status"] for result in batch["results"]] == [201, 201, 200]


async def test_a_stream_through_the_proxy_gets_changes_made_on_either_instance(
    proxied: Proxied,
) -> None:
    token = await token_at(proxied.proxy)
    auth = {"Authorization": f"Bearer {token}"}
    titles = {f"via {base_url}" for base_url in proxied.instances}
    async with (
        httpx.AsyncClient(base_url=proxied.proxy, timeout=20) as http,
        http.stream("GET", "/api/tasks/events", headers=auth) as stream,
    ):
        assert stream.status_code == 200
        assert stream.headers["content-type"].startswith("text/event-stream")
        for base_url in proxied.instances:  # one of them is not the stream's
            async with httpx.AsyncClient(base_url=base_url, timeout=10) as direct:
                made = await direct.post(
                    "/api/tasks", json={"title": f"via {base_url}"}, headers=auth
                )
                assert made.status_code == 201

        seen: set[str] = set()

        async def read_until_both() -> None:
            async for line in stream.aiter_lines():
                if line.startswith("data: {"):
                    seen.add(json.loads(line.removeprefix("data: ")).get("title", ""))
                if titles <= seen:
                    return

        await asyncio.wait_for(read_until_both(), timeout=15)

    assert titles <= seen


async def test_a_websocket_through_the_proxy_gets_changes(proxied: Proxied) -> None:
    token = await token_at(proxied.proxy)
    ws_url = f"ws://{proxied.proxy.removeprefix('http://')}/api/tasks/ws?access_token={token}"
    async with (
        websockets.connect(ws_url) as socket_,
        httpx.AsyncClient(base_url=proxied.proxy, timeout=10) as http,
    ):
        made = await http.post(
            "/api/tasks",
            json={"title": "over the socket"},
            headers={"Authorization": f"Bearer {token}"},
        )
        assert made.status_code == 201

        async def next_created() -> dict[str, Any]:
            while True:
                message: dict[str, Any] = json.loads(await socket_.recv())
                if (
                    message["event"] == "task.created"
                    and message["data"]["title"] == "over the socket"
                ):
                    return message

        message = await asyncio.wait_for(next_created(), timeout=15)

    assert message["data"]["id"] == made.json()["id"]


async def test_the_login_throttle_sees_each_clients_address_through_the_proxy(
    proxied: Proxied,
) -> None:
    wrong = {"username": "admin", "password": "not the password"}
    async with httpx.AsyncClient(base_url=proxied.proxy, timeout=10) as http:
        first = {"X-Forwarded-For": "203.0.113.9"}
        for _ in range(5):
            assert (await http.post("/api/login", json=wrong, headers=first)).status_code == 401
        refused = await http.post("/api/login", json=wrong, headers=first)
        other_client = await http.post(
            "/api/login", json=wrong, headers={"X-Forwarded-For": "203.0.113.10"}
        )

    assert refused.status_code == 429
    assert other_client.status_code == 401, "another client's address is its own pair"


async def test_a_body_too_large_is_the_apps_json_413(proxied: Proxied) -> None:
    token = await token_at(proxied.proxy)
    async with httpx.AsyncClient(base_url=proxied.proxy, timeout=10) as http:
        answer = await http.post(
            "/api/tasks",
            content=json.dumps({"title": "x" * (1536 * 1024)}),
            headers={"Authorization": f"Bearer {token}", "Content-Type": "application/json"},
        )

    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"

"""nginx in front of two `quart-tasks serve` instances, configured by deploy/nginx.conf."""

from __future__ import annotations

import asyncio
import contextlib
import json
import signal
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
import websockets

from tests.helpers.nginx import NGINX, nginx, nginx_config
from tests.helpers.servers import (
    CHECKOUT,
    Server,
    free_port,
    fresh_database_url,
    quart_tasks_serve,
    served,
)
from tests.helpers.support import redis_reachable, require
from tests.test_readme import json_documents, run_verbatim, walkthrough

pytestmark = pytest.mark.slow

ADMIN = {"username": "admin", "password": "admin"}


@dataclass(frozen=True)
class Proxied:
    proxy: str
    instances: tuple[str, str]
    servers: tuple[Server, Server]
    error_log: Path


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
        yield Proxied(
            f"http://127.0.0.1:{port}",
            (one.base_url, two.base_url),
            (one, two),
            workdir / "error.log",
        )


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


async def test_reloading_each_instance_in_turn_under_load_loses_no_request(
    proxied: Proxied,
) -> None:
    """As docs/deployment.md rolls out a release: SIGHUP to one instance, then to the
    other, while clients read, change and create tasks through the proxy. nginx retries
    a lost GET on the other instance, but not a lost POST or PATCH, and counts every
    loss against the instance (max_fails): none may happen."""
    token = await token_at(proxied.proxy)
    auth = {"Authorization": f"Bearer {token}"}
    answers: Counter[str] = Counter()
    reloaded = asyncio.Event()
    errors_before = proxied.error_log.read_text(errors="replace").count("upstream")

    async def client(http: httpx.AsyncClient, task_id: int) -> None:
        while not reloaded.is_set():
            for method, path, body in (
                ("GET", f"/api/tasks/{task_id}", None),
                ("PATCH", f"/api/tasks/{task_id}", {"done": True}),
                ("POST", "/api/tasks", {"title": "during a reload"}),
            ):
                try:
                    answer = await http.request(method, path, json=body, headers=auth)
                    answers[f"{method} {answer.status_code}"] += 1
                except httpx.TransportError as error:
                    answers[f"{method} {type(error).__name__}"] += 1

    async def reloaded_in_turn(server: Server) -> None:
        stopped = server.output().count("stopped (exit code 0)")
        server.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 60
        while server.output().count("stopped (exit code 0)") == stopped:
            assert time.monotonic() < deadline, "the instance's old worker did not stop"
            await asyncio.sleep(0.1)

    async with httpx.AsyncClient(base_url=proxied.proxy, timeout=30) as http:
        made = [
            (await http.post("/api/tasks", json={"title": f"read {n}"}, headers=auth)).json()
            for n in range(16)
        ]
        clients = [asyncio.ensure_future(client(http, task["id"])) for task in made]
        await asyncio.sleep(1)
        for server in proxied.servers:
            await reloaded_in_turn(server)
        await asyncio.sleep(1)
        reloaded.set()
        await asyncio.gather(*clients)
    errors_after = proxied.error_log.read_text(errors="replace").count("upstream")

    assert {answer.split()[1] for answer in answers} <= {"200", "201"}, answers
    assert sum(answers.values()) > 100
    assert errors_after == errors_before, "nginx lost requests on its upstream connections"

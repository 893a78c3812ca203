"""Operations against real `quart-tasks serve` processes: logs, shutdown, metrics, headers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
from pathlib import Path

import httpx
import pytest

from tests.helpers.apps import ADMIN
from tests.helpers.servers import fresh_database_url, quart_tasks_serve, served, two_workers
from tests.helpers.support import TEST_SECRET_KEY

pytestmark = pytest.mark.slow

SECRET_PASSWORD = "hunter2-is-my-password"


async def test_log_lines_are_json_with_the_request_id_and_no_secret(tmp_path: Path) -> None:
    with fresh_database_url(tmp_path) as url, served(url, tmp_path, LOG_FORMAT="json") as server:
        async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
            login = await http.post("/api/login", json=ADMIN)
            tokens = login.json()
            auth = {"Authorization": f"Bearer {tokens['access_token']}"}
            answers = [
                login,
                await http.post(
                    "/api/login", json={"username": "admin", "password": SECRET_PASSWORD}
                ),
                await http.post("/api/tasks", json={"title": "logged"}, headers=auth),
                await http.get(
                    "/api/tasks?q=logged", headers={**auth, "X-Request-ID": "trace-me-1"}
                ),
                await http.post(
                    "/api/token/refresh", json={"refresh_token": tokens["refresh_token"]}
                ),
                await http.get("/nowhere"),
            ]
        server.process.send_signal(signal.SIGTERM)
        server.process.wait(timeout=30)
        output = server.output()

    lines = [json.loads(line) for line in output.splitlines() if line.strip()]
    requests = [
        line
        for line in lines
        if line["logger"] == "quart_tasks.access" and line["route"] != "/openapi.json"
    ]
    assert [r["request_id"] for r in requests] == [a.headers["X-Request-ID"] for a in answers]
    assert requests[3]["request_id"] == "trace-me-1"
    assert [r["status"] for r in requests] == [200, 401, 201, 200, 200, 404]
    assert requests[3]["route"] == "/api/tasks"
    assert requests[2]["user_id"] == requests[3]["user_id"] == 1
    assert all({"time", "method", "route", "status", "duration_ms"} <= set(r) for r in requests)
    for secret in (
        SECRET_PASSWORD,
        'admin"',
        tokens["access_token"],
        tokens["refresh_token"],
        TEST_SECRET_KEY,
    ):
        assert secret not in output


@pytest.mark.parametrize(
    ("workers", "to_the_group"),
    [(1, False), (2, True)],
    ids=["one-worker-signalled", "two-workers-whole-group-signalled"],
)
async def test_sigterm_lets_a_hundred_requests_in_flight_finish(
    tmp_path: Path, workers: int, to_the_group: bool
) -> None:
    """A service manager may signal the server alone or its whole process group."""
    # Expensive hashing makes each login slow enough to be in flight at SIGTERM.
    slow = {"ARGON2_TIME_COST": "4", "LOGIN_FAILURES_PER_ADDRESS": "1000/minute"}

    def command(bind: str) -> list[str]:
        return [*quart_tasks_serve(bind), "--workers", str(workers)]

    with fresh_database_url(tmp_path) as url, served(url, tmp_path, command, **slow) as server:
        limits = httpx.Limits(max_connections=100)
        async with httpx.AsyncClient(base_url=server.base_url, timeout=60, limits=limits) as http:
            logins = [
                asyncio.ensure_future(http.post("/api/login", json=ADMIN)) for _ in range(100)
            ]
            await asyncio.sleep(0.5)
            assert not all(login.done() for login in logins), "the logins finished too soon"
            if to_the_group:
                os.killpg(server.process.pid, signal.SIGTERM)
            else:
                server.process.send_signal(signal.SIGTERM)
            answers = await asyncio.gather(*logins)
        exit_code = await asyncio.to_thread(server.process.wait, 60)

    assert [answer.status_code for answer in answers] == [200] * 100
    assert exit_code == 0


async def test_metrics_add_up_across_two_workers(tmp_path: Path) -> None:
    shared = tmp_path / "metrics"
    shared.mkdir()
    with (
        fresh_database_url(tmp_path) as url,
        served(
            url, tmp_path, two_workers, METRICS_ENABLED="true", PROMETHEUS_MULTIPROC_DIR=str(shared)
        ) as server,
    ):
        for _ in range(40):  # a new connection each time, so both workers answer some
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                assert (await http.get("/healthz")).status_code == 200
        scrapes = []
        for _ in range(6):
            async with httpx.AsyncClient(base_url=server.base_url, timeout=10) as http:
                scrapes.append((await http.get("/metrics")).text)
        workers_counting = {path.stem.split("_")[-1] for path in shared.glob("counter_*.db")}

    assert len(workers_counting) == 2, "both workers should have answered"
    for text in scrapes:
        healthz = [
            float(line.rsplit(" ", 1)[1])
            for line in text.splitlines()
            if line.startswith("quart_tasks_http_requests_total{") and 'route="/healthz"' in line
        ]
        assert sum(healthz) == 40


async def test_no_server_version_is_announced(live_server: str) -> None:
    async with httpx.AsyncClient(base_url=live_server, timeout=10) as http:
        response = await http.get("/healthz")

    assert "server" not in response.headers

"""Health, readiness, outages, security headers, metrics and the API-wide rate limit."""

from __future__ import annotations

import re
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from quart_tasks.serving.lifecycle import begin_draining
from tests.helpers.apps import ADMIN, bearer, serving, settings_for_test
from tests.helpers.support import Client, redis_reachable, require

UNREACHABLE = "postgresql+asyncpg://postgres@127.0.0.1:1/nowhere"


async def test_healthz_answers_without_io(client: Client) -> None:
    response = await client.get("/healthz")

    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok"}


async def test_readyz_checks_the_database(client: Client) -> None:
    response = await client.get("/readyz")

    assert response.status_code == 200
    assert await response.get_json() == {"status": "ok", "checks": {"database": "ok"}}


@pytest.fixture
async def unreachable(tmp_path: Path) -> AsyncIterator[Quart]:
    config = settings_for_test(tmp_path, DATABASE_URL=UNREACHABLE, DB_POOL_TIMEOUT=1)
    async with serving(config, fresh_schema=False) as app:
        yield app


async def test_without_a_database_health_is_fine_but_not_readiness(unreachable: Quart) -> None:
    client = unreachable.test_client()

    health = await client.get("/healthz")
    ready = await client.get("/readyz")

    assert health.status_code == 200
    assert ready.status_code == 503
    assert (await ready.get_json())["checks"] == {"database": "failing"}
    assert ready.headers["Retry-After"] == "5"


async def test_login_during_an_outage_is_503_within_the_pool_timeout(unreachable: Quart) -> None:
    started = time.monotonic()
    response = await unreachable.test_client().post("/api/login", json=ADMIN)

    assert time.monotonic() - started < 5
    assert response.status_code == 503
    assert (await response.get_json())["error"]["code"] == "service_unavailable"


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [("GET", "/api/tasks", None), ("POST", "/api/tasks", {"title": "never acknowledged"})],
)
async def test_a_valid_token_during_an_outage_gets_503(
    tmp_path: Path, method: str, path: str, body: Any
) -> None:
    config = settings_for_test(tmp_path)
    async with serving(config) as app:
        token = await (await app.test_client().post("/api/login", json=ADMIN)).get_json()
    outage = settings_for_test(tmp_path, DATABASE_URL=UNREACHABLE, DB_POOL_TIMEOUT=1)
    async with serving(outage, fresh_schema=False) as app:
        response = await app.test_client().open(
            path, method=method, json=body, headers=bearer(token)
        )

    assert response.status_code == 503
    body = await response.get_json()
    assert body == {
        "error": {
            "code": "service_unavailable",
            "message": "The database is unavailable; retry shortly",
        }
    }
    assert response.headers["Retry-After"] == "5"


@pytest.mark.parametrize("path", ["/api/tasks", "/nowhere", "/healthz", "/openapi.json"])
async def test_security_headers_on_every_response(client: Client, path: str) -> None:
    response = await client.get(path)

    assert response.headers["X-Content-Type-Options"] == "nosniff"
    assert response.headers["Referrer-Policy"] == "no-referrer"
    assert response.headers["Content-Security-Policy"].startswith("default-src 'none'")


async def test_the_docs_page_may_run_its_own_scripts_only(client: Client) -> None:
    response = await client.get("/docs")

    policy = response.headers["Content-Security-Policy"]
    assert "default-src 'self'" in policy
    assert "script-src 'self' 'unsafe-inline'" in policy
    assert "http" not in policy


async def test_metrics_are_off_by_default(client: Client) -> None:
    assert (await client.get("/metrics")).status_code == 404


def sample(text: str, name: str, **labels: str) -> float:
    wanted = ",".join(f'{k}="{v}"' for k, v in sorted(labels.items()))
    for line in text.splitlines():
        match = re.fullmatch(rf"{name}\{{(.*)\}} (\S+)", line)
        if match and ",".join(sorted(match.group(1).split(","))) == wanted:
            return float(match.group(2))
    return 0.0


async def test_metrics_count_requests_by_route_template(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path, METRICS_ENABLED=True)) as app:
        client = app.test_client()
        auth = bearer(await (await client.post("/api/login", json=ADMIN)).get_json())
        labels = {"route": "/api/tasks/<int:task_id>", "method": "GET", "status": "404"}
        before = await (await client.get("/metrics")).get_data(as_text=True)
        for task_id in (1, 2, 3):
            await client.get(f"/api/tasks/{task_id}", headers=auth)
        after = await (await client.get("/metrics")).get_data(as_text=True)

    name = "quart_tasks_http_requests_total"
    assert sample(after, name, **labels) - sample(before, name, **labels) == 3
    assert sample(after, "quart_tasks_http_request_duration_seconds_count", **labels) >= 3
    assert "quart_tasks_http_requests_in_flight" in after
    assert "quart_tasks_db_pool_checked_out" in after


@pytest.fixture
async def limited(tmp_path: Path) -> AsyncIterator[Client]:
    async with serving(settings_for_test(tmp_path, RATE_LIMIT="3/minute")) as app:
        yield app.test_client()


async def test_the_api_rate_limit_is_per_user(limited: Client) -> None:
    admin = bearer(await (await limited.post("/api/login", json=ADMIN)).get_json())
    await limited.post(
        "/api/users", json={"username": "bob", "password": "long enough"}, headers=admin
    )
    bob = bearer(
        await (
            await limited.post("/api/login", json={"username": "bob", "password": "long enough"})
        ).get_json()
    )

    answers = [await limited.get("/api/tasks", headers=bob) for _ in range(4)]
    others = await limited.get("/api/tasks", headers=admin)

    assert [a.status_code for a in answers] == [200, 200, 200, 429]
    assert [a.headers["RateLimit-Remaining"] for a in answers[:3]] == ["2", "1", "0"]
    assert answers[0].headers["RateLimit-Limit"] == "3"
    assert 1 <= int(answers[3].headers["Retry-After"]) <= 60
    assert (await answers[3].get_json())["error"]["code"] == "rate_limited"
    assert others.status_code == 200


async def test_readyz_names_redis_when_it_fails_and_stays_ready(tmp_path: Path) -> None:
    require(redis_reachable(), "Redis is not reachable at 127.0.0.1:6379")
    working = settings_for_test(tmp_path, REDIS_URL="redis://127.0.0.1:6379/0")
    broken = settings_for_test(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")

    async with serving(working) as app:
        up = await app.test_client().get("/readyz")
    async with serving(broken, fresh_schema=False) as app:
        down = await app.test_client().get("/readyz")

    assert up.status_code == 200
    assert await up.get_json() == {"status": "ok", "checks": {"database": "ok", "redis": "ok"}}
    assert down.status_code == 200, "Redis away degrades the instance; it still serves"
    assert await down.get_json() == {
        "status": "degraded",
        "checks": {"database": "ok", "redis": "failing"},
        "degraded": ["redis"],
    }


async def test_readyz_is_503_once_the_worker_is_told_to_stop(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path)) as app:
        client = app.test_client()
        before = await client.get("/readyz")
        begin_draining()
        after = await client.get("/readyz")
        live = await client.get("/healthz")

    assert before.status_code == 200
    assert after.status_code == 503
    assert (await after.get_json())["status"] == "shutting_down"
    assert live.status_code == 200

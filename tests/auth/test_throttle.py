"""Failed logins are limited per username and per client address, across instances via Redis."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import shutil
import socket
import subprocess
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any

import pytest
from prometheus_client import REGISTRY
from quart import Quart

from quart_tasks.services import services_of
from quart_tasks.web import shared_counters
from quart_tasks.web.shared_counters import SharedOrLocalStorage
from tests.helpers.apps import ADMIN, serving, settings_for_test
from tests.helpers.servers import free_port
from tests.helpers.support import Client, redis_reachable, require

WRONG = {"username": "admin", "password": "wrong password"}
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def log_in(client: Client, body: dict[str, str], address: str = "203.0.113.1") -> Any:
    return await client.post("/api/login", json=body, scope_base={"client": (address, 40000)})


async def fail(client: Client, times: int, address: str = "203.0.113.1") -> None:
    for _ in range(times):
        assert (await log_in(client, WRONG, address)).status_code == 401


async def test_the_sixth_failure_of_a_pair_in_a_minute_is_429(client: Client) -> None:
    await fail(client, 5)

    response = await log_in(client, WRONG)

    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert (await response.get_json())["error"]["code"] == "rate_limited"


async def test_a_throttled_pair_is_refused_even_with_the_right_password(client: Client) -> None:
    await fail(client, 5)

    assert (await log_in(client, ADMIN)).status_code == 429


async def test_one_address_failing_does_not_stop_another_user_from_that_address(
    client: Client, alice_tokens: dict[str, Any]
) -> None:
    await fail(client, 5, address="203.0.113.1")

    alice = {"username": "alice", "password": "correct horse battery"}
    response = await log_in(client, alice, address="203.0.113.1")

    assert response.status_code == 200


async def test_one_address_failing_does_not_stop_the_owner_elsewhere(client: Client) -> None:
    await fail(client, 5, address="203.0.113.1")

    response = await log_in(client, ADMIN, address="198.51.100.7")

    assert response.status_code == 200


async def test_a_success_clears_its_pair(client: Client) -> None:
    await fail(client, 4)
    assert (await log_in(client, ADMIN)).status_code == 200

    await fail(client, 4)  # would be the ninth failure in the minute, uncleared

    assert (await log_in(client, ADMIN)).status_code == 200


async def test_successes_are_not_counted(client: Client) -> None:
    for _ in range(8):
        assert (await log_in(client, ADMIN)).status_code == 200


@contextlib.asynccontextmanager
async def app_with(tmp_path: Path, **limits: Any) -> AsyncIterator[Quart]:
    async with serving(settings_for_test(tmp_path, **limits)) as app:
        yield app


async def test_a_password_spraying_address_is_stopped(tmp_path: Path) -> None:
    async with app_with(tmp_path, LOGIN_FAILURES_PER_ADDRESS="10/hour") as app:
        client = app.test_client()
        for n in range(10):
            sprayed = {"username": f"user{n}", "password": "Summer2026!"}
            assert (await log_in(client, sprayed)).status_code == 401

        stopped = await log_in(client, {"username": "user10", "password": "Summer2026!"})
        elsewhere = await log_in(client, ADMIN, address="198.51.100.7")

    assert stopped.status_code == 429
    assert elsewhere.status_code == 200


async def test_a_username_under_attack_is_slowed_never_locked(tmp_path: Path) -> None:
    """From many addresses: each attempt past the threshold waits twice as long as the
    one before, up to the cap; none is refused, and the owner gets in."""
    limits = {
        "LOGIN_FAILURES_PER_USERNAME": "3/hour",
        "LOGIN_DELAY_MAX_SECONDS": 4,
    }
    async with app_with(tmp_path, **limits) as app:
        waits: list[float] = []

        async def record(seconds: float) -> None:
            waits.append(seconds)

        services_of(app).login_throttle.wait = record
        client = app.test_client()
        for n in range(8):
            assert (await log_in(client, WRONG, address=f"203.0.113.{n}")).status_code == 401
        attacker_waits = list(waits)
        owner = await log_in(client, ADMIN, address="198.51.100.7")

    assert attacker_waits == [0.5, 1.0, 2.0, 4.0, 4.0]
    assert owner.status_code == 200
    assert waits[-1] == 4.0


@contextlib.asynccontextmanager
async def instance(tmp_path: Path, prefix: str, *, first: bool) -> AsyncIterator[Quart]:
    config = settings_for_test(tmp_path, REDIS_URL=REDIS_URL, RATE_LIMIT_KEY_PREFIX=prefix)
    async with serving(config, fresh_schema=first) as app:
        yield app


async def test_two_instances_share_the_counters_through_redis(tmp_path: Path) -> None:
    require(redis_reachable(), f"Redis is not reachable at {REDIS_URL}")
    prefix = f"test-{uuid.uuid4().hex}"

    async with (
        instance(tmp_path, prefix, first=True) as one,
        instance(tmp_path, prefix, first=False) as two,
    ):
        await fail(one.test_client(), 3)
        await fail(two.test_client(), 2)

        assert (await log_in(one.test_client(), WRONG)).status_code == 429
        assert (await log_in(two.test_client(), WRONG)).status_code == 429


async def test_with_redis_away_failures_are_counted_in_the_process(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """Not let through uncounted: the limits hold per process until Redis answers."""
    config = settings_for_test(tmp_path, REDIS_URL="redis://127.0.0.1:1/0")  # nothing there
    with caplog.at_level(logging.WARNING, logger="quart_tasks.web.shared_counters"):
        async with serving(config) as app:
            client = app.test_client()
            await fail(client, 5)
            throttled = await log_in(client, WRONG)
            other_address = await log_in(client, ADMIN, address="198.51.100.7")
            local = services_of(app).rate_limit_storage

    assert throttled.status_code == 429
    assert other_address.status_code == 200, "the owner elsewhere is not locked out"
    assert isinstance(local, SharedOrLocalStorage)
    assert local.local_only
    away = [r for r in caplog.records if "unreachable" in r.getMessage()]
    assert len(away) == 1, "logged once, not at every login"


@contextlib.contextmanager
def private_redis(port: int) -> Iterator[None]:
    """A redis-server of the test's own, so stopping it disturbs no other test."""
    require(shutil.which("redis-server") is not None, "redis-server is not installed")
    server = subprocess.Popen(
        ["redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", ""],
        stdout=subprocess.DEVNULL,
    )
    try:
        for _ in range(100):
            with contextlib.suppress(OSError), socket.create_connection(("127.0.0.1", port)):
                break
            time.sleep(0.05)
        yield
    finally:
        server.terminate()
        server.wait(10)


async def test_counting_goes_back_to_redis_when_it_returns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(shared_counters, "RETRY_SECONDS", 0.2)
    fallbacks_before = REGISTRY.get_sample_value("quart_tasks_rate_limit_fallbacks_total") or 0
    port = free_port()
    config = settings_for_test(tmp_path, REDIS_URL=f"redis://127.0.0.1:{port}/0")
    with caplog.at_level(logging.WARNING, logger="quart_tasks.web.shared_counters"):
        async with serving(config) as app:
            client = app.test_client()
            storage = services_of(app).rate_limit_storage
            assert isinstance(storage, SharedOrLocalStorage)
            with private_redis(port):
                await fail(client, 2)
                shared_at_first = not storage.local_only
            await fail(client, 2)  # Redis stopped: counted here
            local_meanwhile = storage.local_only
            gauge_meanwhile = REGISTRY.get_sample_value("quart_tasks_rate_limits_local")
            with private_redis(port):  # a new, empty Redis on the same address
                await asyncio.sleep(0.3)
                await fail(client, 1)
                shared_again = not storage.local_only
                ready = await (await client.get("/readyz")).get_json()

    assert (shared_at_first, local_meanwhile, shared_again) == (True, True, True)
    fallbacks = REGISTRY.get_sample_value("quart_tasks_rate_limit_fallbacks_total") or 0
    assert fallbacks - fallbacks_before == 1
    assert gauge_meanwhile == 1
    assert REGISTRY.get_sample_value("quart_tasks_rate_limits_local") == 0
    assert ready["status"] == "ok"
    messages = [r.getMessage() for r in caplog.records]
    assert sum("unreachable" in m for m in messages) == 1
    assert sum("answer again" in m for m in messages) == 1

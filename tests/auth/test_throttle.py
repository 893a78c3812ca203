"""Failed logins are limited per username and per client address, across instances via Redis."""

from __future__ import annotations

import contextlib
import os
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

from quart import Quart

from tests.helpers.apps import ADMIN, serving, settings_for_test
from tests.helpers.support import Client, redis_reachable, require

WRONG = {"username": "admin", "password": "wrong password"}
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


async def log_in(client: Client, body: dict[str, str], address: str = "203.0.113.1") -> Any:
    return await client.post("/api/login", json=body, scope_base={"client": (address, 40000)})


async def fail(client: Client, times: int, address: str = "203.0.113.1") -> None:
    for _ in range(times):
        assert (await log_in(client, WRONG, address)).status_code == 401


async def test_the_sixth_failure_in_a_minute_is_429(client: Client) -> None:
    await fail(client, 5)

    response = await log_in(client, WRONG)

    assert response.status_code == 429
    assert 1 <= int(response.headers["Retry-After"]) <= 60
    assert (await response.get_json())["error"]["code"] == "rate_limited"


async def test_a_throttled_username_is_refused_even_with_the_right_password(
    client: Client,
) -> None:
    await fail(client, 5)

    assert (await log_in(client, ADMIN)).status_code == 429


async def test_another_users_good_login_is_not_blocked(
    client: Client, alice_tokens: dict[str, Any]
) -> None:
    await fail(client, 5, address="203.0.113.1")

    alice = {"username": "alice", "password": "correct horse battery"}
    response = await log_in(client, alice, address="198.51.100.7")

    assert response.status_code == 200


async def test_one_address_is_limited_across_usernames(client: Client) -> None:
    for name in ("u1", "u2", "u3", "u4", "u5"):
        assert (await log_in(client, {"username": name, "password": "nope"})).status_code == 401

    response = await log_in(client, {"username": "u6", "password": "nope"})

    assert response.status_code == 429


async def test_successes_are_not_counted(client: Client) -> None:
    for _ in range(8):
        assert (await log_in(client, ADMIN)).status_code == 200


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

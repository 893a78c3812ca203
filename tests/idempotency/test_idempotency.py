"""`Idempotency-Key` on `POST /api/tasks`: a retry never creates a duplicate."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import func, select, update

from quart_tasks.models import IdempotencyKey
from quart_tasks.storage.base import utcnow
from tests.helpers.apps import MakeUser, app_database, bearer, serving, settings_for_test
from tests.helpers.support import Client

BODY = {"title": "pay invoice 42", "done": False}


async def post(client: Client, headers: dict[str, str], key: str, body: Any = BODY) -> Any:
    return await client.post("/api/tasks", json=body, headers={**headers, "Idempotency-Key": key})


async def test_a_retry_replays_the_first_response_and_creates_nothing(
    client: Client, auth: dict[str, str], count_tasks: Callable[[], Awaitable[int]]
) -> None:
    first = await post(client, auth, "key-1")
    retry = await post(client, auth, "key-1")

    assert first.status_code == retry.status_code == 201
    assert "Idempotent-Replayed" not in first.headers
    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await retry.get_json() == await first.get_json()
    for header in ("Location", "ETag"):
        assert retry.headers[header] == first.headers[header]
    assert await count_tasks() == 1


async def test_the_same_body_written_differently_is_the_same_request(
    client: Client, auth: dict[str, str], count_tasks: Callable[[], Awaitable[int]]
) -> None:
    await post(client, auth, "key-2")
    retry = await client.post(
        "/api/tasks",
        data='{ "done" : false,  "title": "pay invoice 42" }',
        headers={**auth, "Idempotency-Key": "key-2", "Content-Type": "application/json"},
    )

    assert retry.headers["Idempotent-Replayed"] == "true"
    assert await count_tasks() == 1


async def test_the_same_key_with_another_body_is_422(
    client: Client, auth: dict[str, str], count_tasks: Callable[[], Awaitable[int]]
) -> None:
    await post(client, auth, "key-3")

    response = await post(client, auth, "key-3", {"title": "something else"})

    assert response.status_code == 422
    assert (await response.get_json())["error"]["code"] == "idempotency_key_reused"
    assert await count_tasks() == 1


async def test_keys_belong_to_their_user(
    client: Client,
    auth: dict[str, str],
    make_user: MakeUser,
    count_tasks: Callable[[], Awaitable[int]],
) -> None:
    bob = bearer(await make_user("bob"))

    alices = await post(client, auth, "shared-key")
    bobs = await post(client, bob, "shared-key")

    assert bobs.status_code == 201
    assert "Idempotent-Replayed" not in bobs.headers
    assert (await bobs.get_json())["id"] != (await alices.get_json())["id"]
    assert await count_tasks() == 2


async def test_a_rejected_request_stores_no_key(
    client: Client, auth: dict[str, str], count_tasks: Callable[[], Awaitable[int]]
) -> None:
    rejected = await post(client, auth, "key-4", {"title": ""})
    retried = await post(client, auth, "key-4", {"title": "fixed"})

    assert rejected.status_code == 400
    assert retried.status_code == 201
    assert "Idempotent-Replayed" not in retried.headers
    assert await count_tasks() == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "has space", "ünïcode"])
async def test_a_malformed_key_is_a_validation_error(
    client: Client, auth: dict[str, str], key: str, count_tasks: Callable[[], Awaitable[int]]
) -> None:
    response = await post(client, auth, key)

    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "validation_error"
    assert await count_tasks() == 0


async def test_a_key_of_255_characters_is_accepted(client: Client, auth: dict[str, str]) -> None:
    assert (await post(client, auth, "k" * 255)).status_code == 201


async def expire_all_keys(app: Quart) -> None:
    async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
        await session.execute(
            update(IdempotencyKey).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()


async def stored_keys(app: Quart) -> int:
    async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
        return int(await session.scalar(select(func.count()).select_from(IdempotencyKey)) or 0)


async def test_an_expired_key_runs_the_request_afresh(
    app: Quart, client: Client, auth: dict[str, str], count_tasks: Callable[[], Awaitable[int]]
) -> None:
    await post(client, auth, "key-5")
    await expire_all_keys(app)

    again = await post(client, auth, "key-5", {"title": "a new request"})

    assert again.status_code == 201
    assert "Idempotent-Replayed" not in again.headers
    assert await count_tasks() == 2


@pytest.fixture
async def purging_app(tmp_path: Path) -> AsyncIterator[Quart]:
    async with serving(settings_for_test(tmp_path, IDEMPOTENCY_PURGE_EVERY=1)) as app:
        yield app


async def test_expired_keys_are_purged_by_later_requests(purging_app: Quart) -> None:
    client = purging_app.test_client()
    login = await (
        await client.post("/api/login", json={"username": "admin", "password": "admin"})
    ).get_json()
    headers = bearer(login)
    for n in range(3):
        await post(client, headers, f"old-{n}")
    await expire_all_keys(purging_app)

    await post(client, headers, "fresh")

    assert await stored_keys(purging_app) == 1

"""Refresh-token rotation, reuse detection, logout, deleted users and signing-key rotation."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import delete, func, select, update

from quart_tasks.models import RefreshToken, TokenFamily, User
from quart_tasks.storage.base import utcnow
from tests.helpers.apps import ADMIN, app_database, bearer, serving, settings_for_test
from tests.helpers.support import TEST_SECRET_KEY, Client


async def refresh(client: Client, refresh_token: str) -> Any:
    return await client.post("/api/token/refresh", json={"refresh_token": refresh_token})


async def assert_refused(response: Any) -> None:
    assert response.status_code == 401
    assert response.headers["WWW-Authenticate"].startswith("Bearer")
    assert (await response.get_json())["error"]["code"] == "unauthorized"


async def test_refresh_rotates_both_tokens(client: Client, alice_tokens: dict[str, Any]) -> None:
    response = await refresh(client, alice_tokens["refresh_token"])

    assert response.status_code == 200
    assert response.headers["Cache-Control"] == "no-store"
    renewed = await response.get_json()
    assert renewed["refresh_token"] != alice_tokens["refresh_token"]
    assert renewed["access_token"] != alice_tokens["access_token"]
    me = await client.get("/api/users/me", headers=bearer(renewed))
    assert (await me.get_json())["username"] == "alice"
    assert (await refresh(client, renewed["refresh_token"])).status_code == 200


async def test_a_reused_refresh_token_revokes_its_whole_family(
    client: Client, alice_tokens: dict[str, Any]
) -> None:
    renewed = await (await refresh(client, alice_tokens["refresh_token"])).get_json()

    replayed = await refresh(client, alice_tokens["refresh_token"])

    await assert_refused(replayed)
    await assert_refused(await refresh(client, renewed["refresh_token"]))
    await assert_refused(await client.get("/api/tasks", headers=bearer(renewed)))
    await assert_refused(await client.get("/api/tasks", headers=bearer(alice_tokens)))


async def test_reuse_revokes_only_that_family(
    client: Client, alice_tokens: dict[str, Any], login: Any
) -> None:
    other_session = await login("alice", "correct horse battery")
    await refresh(client, alice_tokens["refresh_token"])
    await refresh(client, alice_tokens["refresh_token"])

    assert (await refresh(client, other_session["refresh_token"])).status_code == 200


async def test_logout_ends_the_session(client: Client, alice_tokens: dict[str, Any]) -> None:
    response = await client.post("/api/logout", headers=bearer(alice_tokens))

    assert response.status_code == 204
    assert await response.get_data() == b""
    await assert_refused(await refresh(client, alice_tokens["refresh_token"]))
    await assert_refused(await client.get("/api/tasks", headers=bearer(alice_tokens)))


@pytest.mark.parametrize(
    "presented",
    ["", "x" * 1025, "not-a-token-we-issued", "A" * 43],
    ids=["empty", "long", "unknown", "random"],
)
async def test_unknown_refresh_tokens_are_refused(client: Client, presented: str) -> None:
    response = await refresh(client, presented)

    assert response.status_code in (400, 401)
    if response.status_code == 401:
        await assert_refused(response)


async def test_an_expired_refresh_token_is_refused(
    app: Quart, client: Client, alice_tokens: dict[str, Any]
) -> None:
    async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
        await session.execute(
            update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1))
        )
        await session.commit()

    await assert_refused(await refresh(client, alice_tokens["refresh_token"]))


async def test_an_access_token_is_not_a_refresh_token(
    client: Client, alice_tokens: dict[str, Any]
) -> None:
    await assert_refused(await refresh(client, alice_tokens["access_token"]))


async def test_a_refresh_token_is_not_an_access_token(
    client: Client, alice_tokens: dict[str, Any]
) -> None:
    headers = {"Authorization": f"Bearer {alice_tokens['refresh_token']}"}

    await assert_refused(await client.get("/api/tasks", headers=headers))


async def test_a_deleted_users_tokens_stop_working(
    app: Quart, client: Client, alice_tokens: dict[str, Any]
) -> None:
    async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
        await session.execute(delete(User).where(User.username == "alice"))
        await session.commit()

    await assert_refused(await client.get("/api/tasks", headers=bearer(alice_tokens)))
    await assert_refused(await refresh(client, alice_tokens["refresh_token"]))


NEW_KEY = "a-brand-new-signing-key-rolled-out-today-0123456789"


async def test_key_rotation_keeps_old_tokens_while_their_key_is_listed(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path)) as app:
        old = await (await app.test_client().post("/api/login", json=ADMIN)).get_json()

    rotated = settings_for_test(tmp_path, SECRET_KEY=NEW_KEY, SECRET_KEY_FALLBACKS=TEST_SECRET_KEY)
    async with serving(rotated, fresh_schema=False) as app:
        client = app.test_client()
        assert (await client.get("/api/users/me", headers=bearer(old))).status_code == 200
        new = await (await client.post("/api/login", json=ADMIN)).get_json()
        assert (await client.get("/api/users/me", headers=bearer(new))).status_code == 200

    retired = settings_for_test(tmp_path, SECRET_KEY=NEW_KEY)
    async with serving(retired, fresh_schema=False) as app:
        client = app.test_client()
        await assert_refused(await client.get("/api/users/me", headers=bearer(old)))
        assert (await client.get("/api/users/me", headers=bearer(new))).status_code == 200


async def test_logins_purge_expired_refresh_tokens_and_empty_families(tmp_path: Path) -> None:
    async with serving(settings_for_test(tmp_path, SESSION_PURGE_EVERY=1)) as app:
        client = app.test_client()
        old = await (await client.post("/api/login", json=ADMIN)).get_json()
        await refresh(client, old["refresh_token"])  # the family now has a spent token too
        async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
            await session.execute(update(RefreshToken).values(expires_at=utcnow()))
            await session.commit()

        fresh = await (await client.post("/api/login", json=ADMIN)).get_json()

        async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
            tokens = await session.scalar(select(func.count()).select_from(RefreshToken))
            families = list(await session.scalars(select(TokenFamily.id)))
        assert tokens == 1
        assert len(families) == 1
        await assert_refused(await client.get("/api/users/me", headers=bearer(old)))
        assert (await client.get("/api/users/me", headers=bearer(fresh))).status_code == 200

"""`/api/users`: who may create accounts, password rules, and what is never returned."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from sqlalchemy import select

from quart_tasks.models import User
from tests.helpers.apps import Login, app_database, serving, settings_for_test
from tests.helpers.support import Client

PASSWORD = "correct horse battery"


async def create(
    client: Client, body: dict[str, Any], headers: dict[str, str] | None = None
) -> Any:
    return await client.post("/api/users", json=body, headers=headers or {})


async def test_an_admin_creates_a_user(client: Client, admin_auth: dict[str, str]) -> None:
    response = await create(client, {"username": "Carol", "password": PASSWORD}, admin_auth)

    assert response.status_code == 201
    body = await response.get_json()
    assert set(body) == {"id", "username", "role", "created_at"}
    assert (body["username"], body["role"]) == ("Carol", "user")


async def test_the_password_is_stored_as_an_argon2id_hash(
    app: Quart, client: Client, admin_auth: dict[str, str]
) -> None:
    await create(client, {"username": "carol", "password": PASSWORD}, admin_auth)

    async with app_database(app).sessionmaker() as session:  # type: ignore[misc]
        stored = await session.scalar(select(User.password_hash).where(User.username == "carol"))

    assert stored is not None
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored


async def test_registration_is_closed_by_default(client: Client, auth: dict[str, str]) -> None:
    anonymous = await create(client, {"username": "eve", "password": PASSWORD})
    as_user = await create(client, {"username": "eve", "password": PASSWORD}, auth)

    assert anonymous.status_code == 401
    assert as_user.status_code == 403
    assert (await as_user.get_json())["error"]["code"] == "forbidden"


@pytest.fixture
async def open_client(tmp_path: Path) -> AsyncIterator[Client]:
    async with serving(settings_for_test(tmp_path, REGISTRATION_OPEN=True)) as app:
        yield app.test_client()


async def test_open_registration_lets_anyone_sign_up_as_a_user(open_client: Client) -> None:
    response = await create(open_client, {"username": "dave", "password": PASSWORD})

    assert response.status_code == 201
    assert (await response.get_json())["role"] == "user"
    login = await open_client.post("/api/login", json={"username": "dave", "password": PASSWORD})
    assert login.status_code == 200


@pytest.mark.parametrize("taken", ["alice", "ALICE", "Alice"])
async def test_a_username_is_taken_whatever_its_case(
    client: Client, admin_auth: dict[str, str], alice_tokens: Any, taken: str
) -> None:
    response = await create(client, {"username": taken, "password": PASSWORD}, admin_auth)

    assert response.status_code == 409
    assert (await response.get_json())["error"]["code"] == "conflict"


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"username": "frank", "password": "x" * 7}, "password"),
        ({"username": "frank", "password": "x" * 1025}, "password"),
        ({"username": "", "password": PASSWORD}, "username"),
        ({"username": "has space", "password": PASSWORD}, "username"),
        ({"username": "-dash", "password": PASSWORD}, "username"),
        ({"username": "x" * 65, "password": PASSWORD}, "username"),
        ({"username": "frank", "password": PASSWORD, "role": "admin"}, "role"),
    ],
)
async def test_bad_accounts_are_refused(
    client: Client, admin_auth: dict[str, str], body: dict[str, Any], field: str
) -> None:
    response = await create(client, body, admin_auth)

    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["code"] == "validation_error"
    assert [detail["loc"][0] for detail in error["details"]] == [field]


async def test_passwords_of_8_and_1024_characters_are_accepted(
    client: Client, admin_auth: dict[str, str], login: Login
) -> None:
    for name, password in (("short", "x" * 8), ("long", "y" * 1024)):
        response = await create(client, {"username": name, "password": password}, admin_auth)
        assert response.status_code == 201
        assert (await login(name, password))["access_token"]


async def test_me_is_the_caller(client: Client, auth: dict[str, str]) -> None:
    response = await client.get("/api/users/me", headers=auth)

    assert response.status_code == 200
    body = await response.get_json()
    assert (body["username"], body["role"]) == ("alice", "user")
    assert "password" not in str(body)


async def test_only_admins_list_users(
    client: Client, admin_auth: dict[str, str], auth: dict[str, str]
) -> None:
    as_user = await client.get("/api/users", headers=auth)
    as_admin = await client.get("/api/users?page_size=1&page=2", headers=admin_auth)

    assert as_user.status_code == 403
    assert as_admin.status_code == 200
    body = await as_admin.get_json()
    assert (body["total"], body["page"], body["page_size"]) == (2, 2, 1)
    assert [user["username"] for user in body["items"]] == ["alice"]
    assert 'rel="prev"' in as_admin.headers["Link"]
    assert "password" not in str(body)

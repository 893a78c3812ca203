"""Creating, reading, replacing, patching and deleting one task."""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from typing import Any

import pytest

from tests.helpers.support import Client

TIMESTAMP = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z")


@pytest.fixture
async def task(client: Client, auth: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/api/tasks", json={"title": "Write docs"}, headers=auth)
    assert response.status_code == 201
    body: dict[str, Any] = await response.get_json()
    return body


async def test_create_returns_the_task_and_its_location(
    client: Client, auth: dict[str, str]
) -> None:
    response = await client.post(
        "/api/tasks", json={"title": "  Buy milk  ", "done": True}, headers=auth
    )

    assert response.status_code == 201
    body = await response.get_json()
    assert set(body) == {"id", "title", "done", "created_at", "updated_at"}
    assert body["title"] == "Buy milk"
    assert body["done"] is True
    assert response.headers["Location"] == f"/api/tasks/{body['id']}"
    assert TIMESTAMP.fullmatch(body["created_at"])
    assert body["updated_at"] == body["created_at"]


async def test_done_defaults_to_false(client: Client, auth: dict[str, str]) -> None:
    response = await client.post("/api/tasks", json={"title": "x"}, headers=auth)

    assert (await response.get_json())["done"] is False


async def test_get_returns_what_create_returned(
    client: Client, auth: dict[str, str], task: dict[str, Any]
) -> None:
    response = await client.get(f"/api/tasks/{task['id']}", headers=auth)

    assert response.status_code == 200
    assert await response.get_json() == task


async def test_put_replaces_title_and_done(
    client: Client, auth: dict[str, str], task: dict[str, Any]
) -> None:
    response = await client.put(
        f"/api/tasks/{task['id']}", json={"title": "Rewrite docs", "done": True}, headers=auth
    )

    assert response.status_code == 200
    body = await response.get_json()
    assert (body["title"], body["done"]) == ("Rewrite docs", True)
    assert body["created_at"] == task["created_at"]
    assert body["updated_at"] > task["updated_at"]
    assert await (await client.get(f"/api/tasks/{task['id']}", headers=auth)).get_json() == body


async def test_put_needs_both_fields(
    client: Client, auth: dict[str, str], task: dict[str, Any]
) -> None:
    response = await client.put(f"/api/tasks/{task['id']}", json={"title": "x"}, headers=auth)

    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["code"] == "validation_error"
    assert error["details"] == [{"loc": ["done"], "message": "Field required"}]


@pytest.mark.parametrize(
    ("patch", "expected"),
    [({"done": True}, ("Write docs", True)), ({"title": " Edit "}, ("Edit", False))],
)
async def test_patch_changes_only_the_given_fields(
    client: Client,
    auth: dict[str, str],
    task: dict[str, Any],
    patch: dict[str, Any],
    expected: tuple[str, bool],
) -> None:
    response = await client.patch(f"/api/tasks/{task['id']}", json=patch, headers=auth)

    assert response.status_code == 200
    body = await response.get_json()
    assert (body["title"], body["done"]) == expected
    assert body["updated_at"] > task["updated_at"]


@pytest.mark.parametrize("patch", [{}, {"title": "Write docs", "done": False}])
async def test_a_patch_that_changes_nothing_keeps_updated_at(
    client: Client, auth: dict[str, str], task: dict[str, Any], patch: dict[str, Any]
) -> None:
    response = await client.patch(f"/api/tasks/{task['id']}", json=patch, headers=auth)

    assert response.status_code == 200
    assert await response.get_json() == task


async def test_delete_removes_the_task(
    client: Client, auth: dict[str, str], task: dict[str, Any]
) -> None:
    response = await client.delete(f"/api/tasks/{task['id']}", headers=auth)

    assert response.status_code == 204
    assert await response.get_data() == b""
    assert (await client.get(f"/api/tasks/{task['id']}", headers=auth)).status_code == 404
    assert (await client.delete(f"/api/tasks/{task['id']}", headers=auth)).status_code == 404


MISSING_IDS = ["999999", "9223372036854775807", "9223372036854775808", "99999999999999999999999"]


@pytest.mark.parametrize("method", ["GET", "PUT", "PATCH", "DELETE"])
@pytest.mark.parametrize("task_id", MISSING_IDS)
async def test_a_missing_task_is_not_found(
    client: Client,
    auth: dict[str, str],
    count_tasks: Callable[[], Awaitable[int]],
    method: str,
    task_id: str,
) -> None:
    response = await client.open(
        f"/api/tasks/{task_id}", method=method, json={"title": "x", "done": True}, headers=auth
    )

    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"
    assert await count_tasks() == 0


@pytest.mark.parametrize("task_id", ["abc", "-1", "1.5", "0x10"])
async def test_a_malformed_id_is_not_found(
    client: Client, auth: dict[str, str], task_id: str
) -> None:
    response = await client.get(f"/api/tasks/{task_id}", headers=auth)

    assert response.status_code == 404
    assert (await response.get_json())["error"]["code"] == "not_found"

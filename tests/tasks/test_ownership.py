"""One user never sees, changes or deletes another's tasks; admins may, when they ask."""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.apps import MakeUser, bearer
from tests.helpers.support import Client


@pytest.fixture
async def bob(make_user: MakeUser) -> dict[str, str]:
    return bearer(await make_user("bob"))


@pytest.fixture
async def alices_task(client: Client, auth: dict[str, str]) -> dict[str, Any]:
    response = await client.post("/api/tasks", json={"title": "alice's secret"}, headers=auth)
    body: dict[str, Any] = await response.get_json()
    return body


BOLA = [
    ("GET", None),
    ("PUT", {"title": "pwned", "done": True}),
    ("PATCH", {"done": True}),
    ("DELETE", None),
]


@pytest.mark.parametrize(("method", "body"), BOLA, ids=[m for m, _ in BOLA])
async def test_another_users_task_is_exactly_like_a_missing_one(
    client: Client,
    auth: dict[str, str],
    bob: dict[str, str],
    alices_task: dict[str, Any],
    method: str,
    body: dict[str, Any] | None,
) -> None:
    path = f"/api/tasks/{alices_task['id']}"

    as_bob = await client.open(path, method=method, json=body, headers=bob)
    missing = await client.open("/api/tasks/999999", method=method, json=body, headers=bob)

    assert as_bob.status_code == missing.status_code == 404
    assert await as_bob.get_json() == await missing.get_json()
    assert await (await client.get(path, headers=auth)).get_json() == alices_task


async def test_lists_filters_and_counts_show_only_the_callers_tasks(
    client: Client, auth: dict[str, str], bob: dict[str, str], alices_task: dict[str, Any]
) -> None:
    await client.post("/api/tasks", json={"title": "bob's", "done": True}, headers=bob)

    for query in ("", "?q=secret", "?done=false", "?done=true", "?sort=title_asc"):
        body = await (await client.get(f"/api/tasks{query}", headers=bob)).get_json()
        assert alices_task["id"] not in [item["id"] for item in body["items"]]
        assert all("alice" not in item["title"] for item in body["items"])
    everything = await (await client.get("/api/tasks", headers=bob)).get_json()
    assert everything["total"] == 1


async def test_a_user_may_not_ask_for_another_owner(
    client: Client, bob: dict[str, str], alices_task: dict[str, Any]
) -> None:
    for owner in ("alice", "*"):
        response = await client.get(f"/api/tasks?owner={owner}", headers=bob)
        assert response.status_code == 403
        assert (await response.get_json())["error"]["code"] == "forbidden"


async def test_an_admin_lists_their_own_tasks_unless_they_ask(
    client: Client,
    admin_auth: dict[str, str],
    bob: dict[str, str],
    alices_task: dict[str, Any],
) -> None:
    bobs = await (await client.post("/api/tasks", json={"title": "b"}, headers=bob)).get_json()
    admins = await (
        await client.post("/api/tasks", json={"title": "a"}, headers=admin_auth)
    ).get_json()

    async def listed(query: str) -> list[int]:
        body = await (await client.get(f"/api/tasks{query}", headers=admin_auth)).get_json()
        assert body["total"] == len(body["items"])
        return sorted(item["id"] for item in body["items"])

    assert await listed("") == [admins["id"]]
    assert await listed("?owner=alice") == [alices_task["id"]]
    assert await listed("?owner=ALICE") == [alices_task["id"]]
    assert await listed("?owner=*") == sorted([alices_task["id"], bobs["id"], admins["id"]])
    assert await listed("?owner=nobody") == []
    assert await listed("?owner=*&done=false") == sorted(
        [alices_task["id"], bobs["id"], admins["id"]]
    )


async def test_an_admin_may_act_on_any_task(
    client: Client, admin_auth: dict[str, str], auth: dict[str, str], alices_task: dict[str, Any]
) -> None:
    path = f"/api/tasks/{alices_task['id']}"

    assert (await client.get(path, headers=admin_auth)).status_code == 200
    patched = await client.patch(path, json={"done": True}, headers=admin_auth)
    assert (await patched.get_json())["done"] is True
    assert (await client.delete(path, headers=admin_auth)).status_code == 204
    assert (await client.get(path, headers=auth)).status_code == 404


async def test_a_created_task_belongs_to_its_creator(
    client: Client, auth: dict[str, str], bob: dict[str, str]
) -> None:
    created = await (await client.post("/api/tasks", json={"title": "t"}, headers=bob)).get_json()

    assert (await client.get(f"/api/tasks/{created['id']}", headers=bob)).status_code == 200
    assert (await client.get(f"/api/tasks/{created['id']}", headers=auth)).status_code == 404

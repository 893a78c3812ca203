"""The `TaskStore` contract (`tasks/store/interface.py`): the same cases, through the API,
against both stores on PostgreSQL, the portable one (`store/portable.py`) and the fast
one (`store/fast.py`)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from quart import Quart
from quart.typing import TestClientProtocol as Client

from quart_tasks.services import services_of
from quart_tasks.tasks.store.fast import FastTaskStore
from quart_tasks.tasks.store.interface import KeyedCreates
from quart_tasks.tasks.store.portable import PortableTaskStore
from tests.helpers.apps import ADMIN, app_on_postgres, bearer, position_events

STORES = [
    pytest.param((False, PortableTaskStore), id="portable"),
    pytest.param((True, FastTaskStore), id="fast"),
]
PASSWORD = "correct horse battery"


@pytest.fixture(params=STORES)
async def app(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Quart]:
    fast_path, store_type = request.param
    async with app_on_postgres(tmp_path, DB_FAST_PATH=fast_path) as app:
        assert type(services_of(app).tasks) is store_type
        yield app


async def login(client: Client, account: dict[str, str]) -> dict[str, str]:
    return bearer(await (await client.post("/api/login", json=account)).get_json())


async def create(client: Client, auth: dict[str, str], title: str, done: bool = False) -> Any:
    response = await client.post("/api/tasks", json={"title": title, "done": done}, headers=auth)
    assert response.status_code == 201, await response.get_data()
    return await response.get_json()


async def test_only_the_fast_store_writes_a_batch_of_creates_as_one_statement(app: Quart) -> None:
    store = services_of(app).tasks
    assert isinstance(store, KeyedCreates) == isinstance(store, FastTaskStore)


async def test_a_created_task_reads_back_as_it_was_answered(app: Quart) -> None:
    client = app.test_client()
    auth = await login(client, ADMIN)
    created = await create(client, auth, "first", done=True)
    read = await client.get(f"/api/tasks/{created['id']}", headers=auth)
    assert read.status_code == 200
    assert await read.get_json() == created
    assert read.headers["ETag"] == '"1"'


async def test_pages_totals_filters_and_cursors_agree(app: Quart) -> None:
    client = app.test_client()
    auth = await login(client, ADMIN)
    ids = [(await create(client, auth, f"task {n}", done=n % 3 == 0))["id"] for n in range(12)]
    first = await (await client.get("/api/tasks?page_size=5", headers=auth)).get_json()
    assert [task["id"] for task in first["items"]] == sorted(ids, reverse=True)[:5]
    assert first["total"] == 12
    done = await (await client.get("/api/tasks?done=true", headers=auth)).get_json()
    assert done["total"] == 4
    assert all(task["done"] for task in done["items"])
    search = await (await client.get("/api/tasks?q=task%201", headers=auth)).get_json()
    assert sorted(task["title"] for task in search["items"]) == ["task 1", "task 10", "task 11"]
    seen: list[int] = []
    cursor = ""
    while cursor is not None:
        query = {"cursor": cursor, "page_size": "5", "sort": "title_asc"}
        page = await (await client.get("/api/tasks", query_string=query, headers=auth)).get_json()
        seen += [task["id"] for task in page["items"]]
        cursor = page["next_cursor"]
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(ids)


async def test_a_change_moves_the_version_only_when_a_value_changes(app: Quart) -> None:
    client = app.test_client()
    auth = await login(client, ADMIN)
    task = await create(client, auth, "to change")
    url = f"/api/tasks/{task['id']}"
    same = await client.patch(url, json={"title": "to change"}, headers=auth)
    assert same.status_code == 200
    assert same.headers["ETag"] == '"1"'
    changed = await client.patch(url, json={"done": True}, headers=auth)
    assert changed.status_code == 200
    assert changed.headers["ETag"] == '"2"'
    stale = await client.patch(url, json={"done": False}, headers={**auth, "If-Match": '"1"'})
    assert stale.status_code == 412
    assert (await (await client.get(url, headers=auth)).get_json())["done"] is True


async def test_a_delete_checks_its_version_and_then_the_task_is_gone(app: Quart) -> None:
    client = app.test_client()
    auth = await login(client, ADMIN)
    url = f"/api/tasks/{(await create(client, auth, 'to delete'))['id']}"
    assert (await client.delete(url, headers={**auth, "If-Match": '"7"'})).status_code == 412
    assert (await client.delete(url, headers={**auth, "If-Match": '"1"'})).status_code == 204
    assert (await client.get(url, headers=auth)).status_code == 404
    assert (await client.delete(url, headers=auth)).status_code == 404
    assert (await client.patch(url, json={"done": True}, headers=auth)).status_code == 404


async def test_another_users_task_is_not_found_for_any_operation(app: Quart) -> None:
    client = app.test_client()
    admin = await login(client, ADMIN)
    account = {"username": "someone", "password": PASSWORD}
    assert (await client.post("/api/users", json=account, headers=admin)).status_code == 201
    someone = await login(client, account)
    url = f"/api/tasks/{(await create(client, admin, 'the admin s'))['id']}"
    assert (await client.get(url, headers=someone)).status_code == 404
    assert (await client.patch(url, json={"done": True}, headers=someone)).status_code == 404
    assert (await client.delete(url, headers=someone)).status_code == 404
    listed = await (await client.get("/api/tasks", headers=someone)).get_json()
    assert listed["items"] == []
    assert listed["total"] == 0


async def test_a_batch_of_creates_is_kept_under_its_uuids_and_replayed(app: Quart) -> None:
    client = app.test_client()
    auth = await login(client, ADMIN)
    commands = [
        {"type": "create", "uuid": f"00000000-0000-4000-8000-00000000000{n}",
         "temp_id": f"t{n}", "args": {"title": f"batched {n}"}}
        for n in range(3)
    ]  # fmt: skip
    first = await client.post("/api/tasks/batch", json={"commands": commands}, headers=auth)
    again = await client.post("/api/tasks/batch", json={"commands": commands}, headers=auth)
    assert first.status_code == again.status_code == 200
    answered, replayed = await first.get_json(), await again.get_json()
    assert [result["status"] for result in answered["results"]] == [201, 201, 201]
    assert [result["body"] for result in replayed["results"]] == [
        result["body"] for result in answered["results"]
    ]
    assert all(result.get("replayed") for result in replayed["results"])
    assert len(set(answered["temp_id_mapping"].values())) == 3
    listed = await (await client.get("/api/tasks", headers=auth)).get_json()
    assert listed["total"] == 3


async def test_the_logs_bounds_move_with_each_write_and_a_sync_resumes_from_them(
    app: Quart,
) -> None:
    client = app.test_client()
    auth = await login(client, ADMIN)
    await create(client, auth, "before")
    await position_events(app)
    full = await (await client.get("/api/tasks/sync", headers=auth)).get_json()
    changed = await create(client, auth, "after")
    await position_events(app)
    query = {"token": full["next_token"]}
    resumed = await (
        await client.get("/api/tasks/sync", query_string=query, headers=auth)
    ).get_json()
    assert [task["id"] for task in resumed["tasks"]] == [changed["id"]]
    assert resumed["full_sync"] is False

"""The sync's property: whatever others write meanwhile, a client that keeps syncing ends
with a copy equal to the server's, and no sync gives a task twice."""

from __future__ import annotations

import asyncio
import random
from typing import Any

import pytest
from quart import Quart

from tests.helpers.apps import position_events
from tests.helpers.support import Client

WRITERS = 4
WRITES_EACH = 40


async def write_at_random(
    client: Client, auth: dict[str, str], rng: random.Random, name: str
) -> None:
    mine: list[int] = []
    for n in range(WRITES_EACH):
        action = rng.choice(["create", "create", "patch", "patch", "replace", "delete"])
        if action == "create" or not mine:
            response = await client.post("/api/tasks", json={"title": f"{name} {n}"}, headers=auth)
            assert response.status_code == 201
            mine.append((await response.get_json())["id"])
            continue
        task_id = rng.choice(mine)
        url = f"/api/tasks/{task_id}"
        if action == "patch":
            response = await client.patch(url, json={"done": rng.random() < 0.5}, headers=auth)
        elif action == "replace":
            response = await client.put(
                url, json={"title": f"{name} {n}", "done": False}, headers=auth
            )
        else:
            response = await client.delete(url, headers=auth)
            mine.remove(task_id)
        assert response.status_code in (200, 204), await response.get_data()
        await asyncio.sleep(0)


async def sync_once(
    client: Client, auth: dict[str, str], copy: dict[int, dict[str, Any]], token: str | None
) -> str:
    """One sync, page by page, into `copy`; the token to keep."""
    seen: set[int] = set()
    while True:
        query = {"page_size": 3, **({"token": token} if token else {})}
        response = await client.get("/api/tasks/sync", query_string=query, headers=auth)
        assert response.status_code == 200, await response.get_data()
        page = await response.get_json()
        ids = [task["id"] for task in page["tasks"]] + page["deleted"]
        assert not seen & set(ids), "a task came twice in one sync"
        seen.update(ids)
        for task in page["tasks"]:
            copy[task["id"]] = task
        for task_id in page["deleted"]:
            copy.pop(task_id, None)
        token = page["next_token"]
        if not page["has_more"]:
            return token


async def server_state(client: Client, auth: dict[str, str]) -> dict[int, dict[str, Any]]:
    state: dict[int, dict[str, Any]] = {}
    cursor = ""
    while cursor is not None:
        response = await client.get(
            "/api/tasks", query_string={"cursor": cursor, "page_size": 100}, headers=auth
        )
        body = await response.get_json()
        state.update({task["id"]: task for task in body["items"]})
        cursor = body["next_cursor"]
    return state


@pytest.mark.parametrize("seed", [1, 2, 3])
async def test_a_syncing_client_converges_while_others_write(
    client: Client, app: Quart, auth: dict[str, str], seed: int
) -> None:
    rng = random.Random(seed)
    for n in range(10):
        await client.post("/api/tasks", json={"title": f"before {n}"}, headers=auth)
    writers = asyncio.gather(
        *(
            write_at_random(client, auth, random.Random(rng.random()), f"w{w}")
            for w in range(WRITERS)
        )
    )
    copy: dict[int, dict[str, Any]] = {}
    token: str | None = None
    syncs = 0
    while not writers.done():
        token = await sync_once(client, auth, copy, token)
        syncs += 1
        if rng.random() < 0.5:
            await position_events(app)  # as another process's round would, at any moment
        await asyncio.sleep(0)
    await writers
    await position_events(app)
    await sync_once(client, auth, copy, token)

    assert syncs > 1
    assert copy == await server_state(client, auth)

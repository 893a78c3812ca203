"""Racing clients against a real Hypercorn process: one winner, no duplicate, no lost task."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections import Counter
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import insert

from quart_tasks.models import Task
from quart_tasks.storage.base import utcnow
from tests.helpers.apps import ADMIN, LiveServer
from tests.helpers.support import engine_for

pytestmark = pytest.mark.slow

RACERS = 50


async def new_user(http: httpx.AsyncClient) -> dict[str, str]:
    """A user of its own for each test: the live server's database is shared."""
    admin_login = await http.post("/api/login", json=ADMIN)
    assert admin_login.status_code == 200, admin_login.text
    admin = admin_login.json()
    name = f"racer-{uuid.uuid4().hex[:10]}"
    password = "a password long enough"
    created = await http.post(
        "/api/users",
        json={"username": name, "password": password},
        headers={"Authorization": f"Bearer {admin['access_token']}"},
    )
    assert created.status_code == 201
    login = (await http.post("/api/login", json={"username": name, "password": password})).json()
    return {"Authorization": f"Bearer {login['access_token']}"}


def client(base_url: str) -> httpx.AsyncClient:
    limits = httpx.Limits(max_connections=RACERS, max_keepalive_connections=RACERS)
    return httpx.AsyncClient(base_url=base_url, timeout=30, limits=limits)


async def test_fifty_patches_with_one_etag_have_one_winner(live: LiveServer) -> None:
    async with client(live.base_url) as http:
        auth = await new_user(http)
        created = await http.post("/api/tasks", json={"title": "contested"}, headers=auth)
        url, tag = created.headers["Location"], created.headers["ETag"]

        answers = await asyncio.gather(
            *(
                http.patch(url, json={"title": f"writer {n}"}, headers={**auth, "If-Match": tag})
                for n in range(RACERS)
            )
        )
        final = await http.get(url, headers=auth)

    statuses = Counter(answer.status_code for answer in answers)
    assert statuses == {200: 1, 412: RACERS - 1}
    [winner] = [answer for answer in answers if answer.status_code == 200]
    assert final.headers["ETag"] == '"2"' == winner.headers["ETag"]
    assert final.json()["title"] == winner.json()["title"]
    assert all(a.headers["ETag"] == '"2"' for a in answers if a.status_code == 412)


async def test_fifty_creates_with_one_key_make_one_task(live: LiveServer) -> None:
    title = f"exactly once {uuid.uuid4().hex}"
    async with client(live.base_url) as http:
        auth = await new_user(http)
        headers = {**auth, "Idempotency-Key": "same-key"}

        answers = await asyncio.gather(
            *(
                http.post("/api/tasks", json={"title": title}, headers=headers)
                for _ in range(RACERS)
            )
        )
        listed = (await http.get("/api/tasks", params={"q": title}, headers=auth)).json()

    assert {answer.status_code for answer in answers} <= {201, 409}
    created = [a for a in answers if a.status_code == 201]
    originals = [a for a in created if "Idempotent-Replayed" not in a.headers]
    assert len(originals) == 1
    assert {a.json()["id"] for a in created} == {originals[0].json()["id"]}
    assert listed["total"] == 1
    assert listed["items"][0]["id"] == originals[0].json()["id"]


SEEDED = 10_000
SORTS = ["id_desc", "id_asc", "created_desc", "created_asc", "updated_desc", "title_asc"]


async def seed(database_url: str, owner_id: int) -> list[int]:
    engine = engine_for(database_url)
    start = utcnow() - timedelta(days=1)
    rows = [
        {
            "owner_id": owner_id,
            "title": f"seed {n * 7919 % SEEDED:05d}",
            "done": n % 2 == 0,
            "created_at": start + timedelta(milliseconds=n),
            "updated_at": start + timedelta(milliseconds=n),
        }
        for n in range(SEEDED)
    ]
    try:
        async with engine.begin() as connection:
            result = await connection.execute(insert(Task).returning(Task.id), rows)
            return [row[0] for row in result]
    finally:
        await engine.dispose()


async def walk(http: httpx.AsyncClient, auth: dict[str, str], sort: str) -> list[int]:
    seen: list[int] = []
    params: dict[str, Any] = {"cursor": "", "sort": sort, "page_size": 100}
    while True:
        response = await http.get("/api/tasks", params=params, headers=auth)
        assert response.status_code == 200, response.text
        body = response.json()
        seen += [item["id"] for item in body["items"]]
        if body["next_cursor"] is None:
            return seen
        params["cursor"] = body["next_cursor"]


async def churn(
    http: httpx.AsyncClient, auth: dict[str, str], seeded: list[int], stop: asyncio.Event
) -> set[int]:
    """Insert and delete tasks until told to stop; the ids deleted."""
    deleted: set[int] = set()
    rng = random.Random(7)
    while not stop.is_set():
        await http.post("/api/tasks", json={"title": f"new {rng.random()}"}, headers=auth)
        victim = rng.choice(seeded)
        if (await http.delete(f"/api/tasks/{victim}", headers=auth)).status_code in (204, 404):
            deleted.add(victim)
        await asyncio.sleep(0.01)
    return deleted


async def test_keyset_walks_visit_every_task_once_while_tasks_come_and_go(
    live: LiveServer,
) -> None:
    async with client(live.base_url) as http:
        auth = await new_user(http)
        owner_id = (await http.get("/api/users/me", headers=auth)).json()["id"]
        seeded = await seed(live.database_url, owner_id)

        stop = asyncio.Event()
        churner = asyncio.ensure_future(churn(http, auth, seeded, stop))
        walks = await asyncio.gather(*(walk(http, auth, sort) for sort in SORTS))
        stop.set()
        deleted = await churner

    assert len(deleted) > 10, "the walks should have raced with deletions"
    survivors = set(seeded) - deleted
    for sort, seen in zip(SORTS, walks, strict=True):
        duplicates = [task_id for task_id, n in Counter(seen).items() if n > 1]
        assert duplicates == [], f"{sort}: seen twice: {duplicates[:5]}"
        assert survivors <= set(seen), f"{sort}: missed {len(survivors - set(seen))} tasks"

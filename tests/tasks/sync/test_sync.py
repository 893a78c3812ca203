"""`GET /api/tasks/sync`: every task, then only what changed, page by page, by token."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from quart import Quart

from tests.helpers.apps import ADMIN, bearer, position_events, serving, settings_for_test
from tests.helpers.support import Client

SYNC = "/api/tasks/sync"


async def sync_pages(
    client: Client, app: Quart, auth: dict[str, str], token: str | None = None, **params: Any
) -> tuple[list[dict[str, Any]], str]:
    """Every page of one sync, and the token to keep."""
    await position_events(app)
    pages = []
    while True:
        query = {**params, **({"token": token} if token is not None else {})}
        response = await client.get(SYNC, query_string=query, headers=auth)
        assert response.status_code == 200, await response.get_data()
        page: dict[str, Any] = await response.get_json()
        pages.append(page)
        token = page["next_token"]
        if not page["has_more"]:
            return pages, token


async def create(client: Client, auth: dict[str, str], title: str) -> dict[str, Any]:
    response = await client.post("/api/tasks", json={"title": title}, headers=auth)
    assert response.status_code == 201
    body: dict[str, Any] = await response.get_json()
    return body


async def test_a_sync_without_a_token_lists_every_task_once_in_pages(
    client: Client, app: Quart, auth: dict[str, str]
) -> None:
    made = [await create(client, auth, f"task {n}") for n in range(5)]

    pages, _ = await sync_pages(client, app, auth, page_size=2)

    assert [len(page["tasks"]) for page in pages] == [2, 2, 1]
    assert [page["has_more"] for page in pages] == [True, True, False]
    assert all(page["full_sync"] and page["deleted"] == [] for page in pages)
    assert [task for page in pages for task in page["tasks"]] == made


async def test_a_sync_from_the_last_token_gives_only_what_changed(
    client: Client, app: Quart, auth: dict[str, str]
) -> None:
    kept, changed, removed = [await create(client, auth, name) for name in ("a", "b", "c")]
    _, token = await sync_pages(client, app, auth)
    for title in ("b1", "b2", "b3"):
        await client.patch(f"/api/tasks/{changed['id']}", json={"title": title}, headers=auth)
    await client.delete(f"/api/tasks/{removed['id']}", headers=auth)
    added = await create(client, auth, "d")

    pages, _ = await sync_pages(client, app, auth, token)

    assert len(pages) == 1
    (page,) = pages
    assert page["full_sync"] is False
    current = await (await client.get(f"/api/tasks/{changed['id']}", headers=auth)).get_json()
    assert page["tasks"] == [current, added]
    assert current["title"] == "b3"
    assert page["deleted"] == [removed["id"]]
    assert kept["id"] not in [task["id"] for task in page["tasks"]]


async def test_a_sync_with_nothing_new_gives_nothing_and_the_same_token(
    client: Client, app: Quart, auth: dict[str, str]
) -> None:
    await create(client, auth, "a")
    _, token = await sync_pages(client, app, auth)

    pages, again = await sync_pages(client, app, auth, token)

    assert pages == [
        {"tasks": [], "deleted": [], "full_sync": False, "has_more": False, "next_token": token}
    ]
    assert again == token


async def test_an_empty_account_syncs_and_then_sees_its_first_task(
    client: Client, app: Quart, auth: dict[str, str]
) -> None:
    pages, token = await sync_pages(client, app, auth)
    assert pages[0]["tasks"] == []
    assert pages[0]["full_sync"] is True
    first = await create(client, auth, "first")

    pages, _ = await sync_pages(client, app, auth, token)

    assert pages[0]["tasks"] == [first]


async def test_changes_page_by_task_and_each_task_comes_once(
    client: Client, app: Quart, auth: dict[str, str]
) -> None:
    made = [await create(client, auth, f"t{n}") for n in range(7)]
    _, token = await sync_pages(client, app, auth)
    for task in reversed(made):  # changes in the opposite order to the ids
        for round_ in range(2):
            await client.patch(
                f"/api/tasks/{task['id']}", json={"title": f"{round_}"}, headers=auth
            )

    pages, _ = await sync_pages(client, app, auth, token, page_size=3)

    assert [len(page["tasks"]) for page in pages] == [3, 3, 1]
    ids = [task["id"] for page in pages for task in page["tasks"]]
    assert ids == sorted(task["id"] for task in made)
    assert {task["title"] for page in pages for task in page["tasks"]} == {"1"}


async def test_a_sync_shows_only_the_callers_tasks_and_their_token_is_theirs(
    client: Client, app: Quart, auth: dict[str, str], make_user: Any
) -> None:
    bob = bearer(await make_user("bob"))
    _, alice_token = await sync_pages(client, app, auth)
    _, bob_token = await sync_pages(client, app, bob)
    await create(client, bob, "bob's")
    mine = await create(client, auth, "alice's")

    alice_pages, _ = await sync_pages(client, app, auth, alice_token)
    stolen = await client.get(SYNC, query_string={"token": alice_token}, headers=bob)

    bob_pages, _ = await sync_pages(client, app, bob, bob_token)
    assert [task for page in alice_pages for task in page["tasks"]] == [mine]
    assert [task["title"] for page in bob_pages for task in page["tasks"]] == ["bob's"]
    assert stolen.status_code == 400
    assert (await stolen.get_json())["error"]["code"] == "validation_error"
    full, _ = await sync_pages(client, app, auth)
    assert [task["title"] for task in full[0]["tasks"]] == ["alice's"]


async def test_an_admin_syncs_one_owner_or_everyone_and_a_user_may_not(
    client: Client, app: Quart, auth: dict[str, str], admin_auth: dict[str, str]
) -> None:
    alices = await create(client, auth, "alice's")
    admins = await create(client, admin_auth, "admin's")

    named, named_token = await sync_pages(client, app, admin_auth, owner="alice")
    everyone, _ = await sync_pages(client, app, admin_auth, owner="*")
    own, _ = await sync_pages(client, app, admin_auth)
    refused = await client.get(SYNC, query_string={"owner": "admin"}, headers=auth)
    other_scope = await client.get(SYNC, query_string={"token": named_token}, headers=admin_auth)

    assert named[0]["tasks"] == [alices]
    assert everyone[0]["tasks"] == [alices, admins]
    assert own[0]["tasks"] == [admins]
    assert refused.status_code == 403
    assert other_scope.status_code == 400
    await client.patch(f"/api/tasks/{alices['id']}", json={"done": True}, headers=auth)
    await client.patch(f"/api/tasks/{admins['id']}", json={"done": True}, headers=admin_auth)
    changed, _ = await sync_pages(client, app, admin_auth, named_token, owner="alice")
    assert [task["id"] for task in changed[0]["tasks"]] == [alices["id"]]


@pytest.mark.parametrize(
    "token",
    [
        "garbage",
        "a.b.c",
        "eyJ1IjoxfQ.AAAAAAAAAAAAAAAAAAAAAA",  # a payload with a made-up signature
    ],
)
async def test_a_malformed_or_forged_token_is_a_validation_error(
    client: Client, auth: dict[str, str], token: str
) -> None:
    response = await client.get(SYNC, query_string={"token": token}, headers=auth)

    assert response.status_code == 400
    body = await response.get_json()
    assert body["error"]["code"] == "validation_error"
    assert body["error"]["details"][0]["loc"] == ["query", "token"]


async def test_an_altered_token_or_a_list_cursor_is_refused(
    client: Client, app: Quart, auth: dict[str, str]
) -> None:
    for n in range(3):
        await create(client, auth, f"t{n}")
    pages, _ = await sync_pages(client, app, auth, page_size=1)
    payload, mac = pages[0]["next_token"].split(".")
    altered = payload[:-2] + ("A" if payload[-2] != "A" else "B") + payload[-1] + "." + mac
    listed = await client.get(
        "/api/tasks", query_string={"cursor": "", "page_size": 1}, headers=auth
    )
    cursor = (await listed.get_json())["next_cursor"]

    for bad in (altered, cursor):
        response = await client.get(SYNC, query_string={"token": bad}, headers=auth)
        assert response.status_code == 400, bad


@pytest.mark.parametrize("page_size", ["0", "1001", "x"])
async def test_page_size_outside_1_to_1000_is_refused(
    client: Client, auth: dict[str, str], page_size: str
) -> None:
    response = await client.get(SYNC, query_string={"page_size": page_size}, headers=auth)

    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "validation_error"


async def test_a_token_older_than_the_log_answers_410_and_a_fresh_sync_recovers(
    tmp_path: Path,
) -> None:
    config = settings_for_test(tmp_path, EVENTS_RETENTION_COUNT=2, EVENTS_PURGE_EVERY=1)
    async with serving(config) as app:
        client = app.test_client()
        login = await client.post("/api/login", json=ADMIN)
        auth = bearer(await login.get_json())
        await create(client, auth, "before")
        _, old_token = await sync_pages(client, app, auth)
        made = [await create(client, auth, f"after {n}") for n in range(6)]
        await position_events(app)
        await create(client, auth, "one more, to purge after the rounds")
        await position_events(app)

        expired = await client.get(SYNC, query_string={"token": old_token}, headers=auth)
        pages, _ = await sync_pages(client, app, auth)

    assert expired.status_code == 410
    assert (await expired.get_json())["error"]["code"] == "sync_token_expired"
    assert [task["title"] for task in pages[0]["tasks"]][1:7] == [t["title"] for t in made]

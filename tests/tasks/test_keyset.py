"""Keyset pagination: `cursor` walks any sort order; a tampered cursor is refused."""

from __future__ import annotations

import base64
import json
from itertools import chain
from typing import Any

import pytest

from tests.helpers.support import Client

SORTS = ["id_desc", "id_asc", "created_desc", "created_asc", "updated_desc", "title_asc"]


@pytest.fixture
async def tasks(client: Client, auth: dict[str, str]) -> list[dict[str, Any]]:
    created = []
    for n, title in enumerate(["m", "a", "z", "a", "k", "b", "a"]):
        response = await client.post(
            "/api/tasks", json={"title": title, "done": n % 2 == 0}, headers=auth
        )
        created.append(await response.get_json())
    await client.patch(f"/api/tasks/{created[1]['id']}", json={"done": True}, headers=auth)
    return created


async def walk(client: Client, auth: dict[str, str], query: str) -> list[list[int]]:
    """Every page's ids, following `next_cursor` (and checking the Link agrees)."""
    pages: list[list[int]] = []
    url = f"/api/tasks?cursor=&{query}"
    while True:
        response = await client.get(url, headers=auth)
        assert response.status_code == 200, await response.get_data()
        body = await response.get_json()
        assert set(body) == {"items", "page_size", "next_cursor"}
        pages.append([item["id"] for item in body["items"]])
        if body["next_cursor"] is None:
            assert "Link" not in response.headers
            return pages
        link = response.headers["Link"]
        assert link.endswith('>; rel="next"')
        url = link[1 : link.index(">")]
        assert f"cursor={body['next_cursor']}" in url.replace("%3D", "=")


@pytest.mark.parametrize("sort", SORTS)
async def test_a_walk_gives_the_same_order_as_offset_pages(
    client: Client, auth: dict[str, str], tasks: list[dict[str, Any]], sort: str
) -> None:
    offset = await (await client.get(f"/api/tasks?sort={sort}", headers=auth)).get_json()

    pages = await walk(client, auth, f"sort={sort}&page_size=3")

    assert [len(page) for page in pages] == [3, 3, 1]
    assert list(chain.from_iterable(pages)) == [item["id"] for item in offset["items"]]


async def test_a_walk_keeps_its_filters(
    client: Client, auth: dict[str, str], tasks: list[dict[str, Any]]
) -> None:
    pages = await walk(client, auth, "done=true&q=a&sort=title_asc&page_size=1")

    expected = await (
        await client.get("/api/tasks?done=true&q=a&sort=title_asc", headers=auth)
    ).get_json()
    assert list(chain.from_iterable(pages)) == [item["id"] for item in expected["items"]]


async def test_an_exact_last_page_has_no_next_cursor(
    client: Client, auth: dict[str, str], tasks: list[dict[str, Any]]
) -> None:
    assert [len(page) for page in await walk(client, auth, "page_size=7")] == [7]


async def first_cursor(client: Client, auth: dict[str, str], sort: str = "id_desc") -> str:
    body = await (
        await client.get(f"/api/tasks?cursor=&page_size=2&sort={sort}", headers=auth)
    ).get_json()
    return str(body["next_cursor"])


def tampered(cursor: str) -> list[str]:
    payload, mac = cursor.split(".")
    content = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    content["key"] = [10**6]
    forged = base64.urlsafe_b64encode(json.dumps(content).encode()).rstrip(b"=").decode()
    flipped = mac[:-1] + ("A" if mac[-1] != "A" else "B")
    return [f"{forged}.{mac}", f"{payload}.{flipped}", payload, "!!!.???", "a.b.c", "x" * 1025]


async def test_a_tampered_cursor_is_refused(
    client: Client, auth: dict[str, str], tasks: list[dict[str, Any]]
) -> None:
    for cursor in tampered(await first_cursor(client, auth)):
        response = await client.get("/api/tasks", query_string={"cursor": cursor}, headers=auth)
        assert response.status_code == 400, cursor
        assert (await response.get_json())["error"]["code"] == "validation_error"


async def test_a_cursor_of_another_sort_order_is_refused(
    client: Client, auth: dict[str, str], tasks: list[dict[str, Any]]
) -> None:
    cursor = await first_cursor(client, auth, sort="title_asc")

    response = await client.get(
        "/api/tasks", query_string={"cursor": cursor, "sort": "created_desc"}, headers=auth
    )

    assert response.status_code == 400


async def test_page_and_cursor_do_not_mix(client: Client, auth: dict[str, str]) -> None:
    response = await client.get("/api/tasks?cursor=&page=2", headers=auth)

    assert response.status_code == 400
    assert (await response.get_json())["error"]["code"] == "validation_error"


async def test_offset_mode_is_unchanged(
    client: Client, auth: dict[str, str], tasks: list[dict[str, Any]]
) -> None:
    body = await (await client.get("/api/tasks?page=2&page_size=3", headers=auth)).get_json()

    assert set(body) == {"items", "page", "page_size", "total", "total_exact"}
    assert body["total"] == 7

"""`GET /api/tasks`: pages, filters, sort orders and the `Link` header."""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from tests.helpers.support import Client


async def create(client: Client, auth: dict[str, str], title: str, done: bool = False) -> int:
    response = await client.post("/api/tasks", json={"title": title, "done": done}, headers=auth)
    assert response.status_code == 201
    return int((await response.get_json())["id"])


async def listing(client: Client, auth: dict[str, str], query: str = "") -> dict[str, Any]:
    response = await client.get(f"/api/tasks{query}", headers=auth)
    assert response.status_code == 200, await response.get_data()
    body: dict[str, Any] = await response.get_json()
    body["link"] = parse_links(response.headers.get("Link", ""))
    return body


def parse_links(header: str) -> dict[str, dict[str, list[str]]]:
    """rel -> the link's query parameters."""
    links = {}
    for target, rel in re.findall(r'<([^>]+)>; rel="(\w+)"', header):
        parts = urlsplit(target)
        assert parts.path == "/api/tasks"
        links[rel] = parse_qs(parts.query)
    return links


def ids(body: dict[str, Any]) -> list[int]:
    return [item["id"] for item in body["items"]]


@pytest.fixture
async def seven(client: Client, auth: dict[str, str]) -> list[int]:
    """Seven tasks: titles b, a, d, c, f, e, g; every third one done."""
    titles = ["b", "a", "d", "c", "f", "e", "g"]
    return [await create(client, auth, title, done=i % 3 == 0) for i, title in enumerate(titles)]


async def test_an_empty_list(client: Client, auth: dict[str, str]) -> None:
    body = await listing(client, auth)

    assert (body["items"], body["page"], body["page_size"], body["total"]) == ([], 1, 20, 0)
    assert set(body["link"]) == {"first", "last"}


async def test_default_is_newest_first_twenty_a_page(
    client: Client, auth: dict[str, str], seven: list[int]
) -> None:
    body = await listing(client, auth)

    assert ids(body) == sorted(seven, reverse=True)
    assert (body["page"], body["page_size"], body["total"]) == (1, 20, 7)


async def test_pages_split_the_list(client: Client, auth: dict[str, str], seven: list[int]) -> None:
    pages = [await listing(client, auth, f"?sort=id_asc&page_size=3&page={n}") for n in (1, 2, 3)]

    assert [ids(page) for page in pages] == [seven[0:3], seven[3:6], seven[6:7]]
    assert all(page["total"] == 7 for page in pages)


async def test_a_page_past_the_end_is_empty(
    client: Client, auth: dict[str, str], seven: list[int]
) -> None:
    body = await listing(client, auth, "?page=9")

    assert (body["items"], body["page"], body["total"]) == ([], 9, 7)
    assert body["link"]["prev"]["page"] == ["1"]
    assert "next" not in body["link"]


@pytest.mark.parametrize(
    ("asked", "given"), [("0", 1), ("-5", 1), ("1", 1), ("100", 100), ("1000", 100)]
)
async def test_page_size_is_clamped(
    client: Client, auth: dict[str, str], asked: str, given: int
) -> None:
    body = await listing(client, auth, f"?page_size={asked}")

    assert body["page_size"] == given


@pytest.mark.parametrize(
    ("value", "done"),
    [
        ("true", True),
        ("1", True),
        ("yes", True),
        ("TRUE", True),
        ("false", False),
        ("0", False),
        ("no", False),
    ],
)
async def test_filter_by_done(
    client: Client, auth: dict[str, str], seven: list[int], value: str, done: bool
) -> None:
    body = await listing(client, auth, f"?done={value}")

    expected = [task_id for i, task_id in enumerate(seven) if (i % 3 == 0) == done]
    assert ids(body) == sorted(expected, reverse=True)
    assert body["total"] == len(expected)


async def test_q_matches_a_substring_of_the_title_in_any_case(
    client: Client, auth: dict[str, str]
) -> None:
    milk = await create(client, auth, "Buy MILK")
    oat_milk = await create(client, auth, "oat milkshake")
    await create(client, auth, "Bread")

    body = await listing(client, auth, "?q=Milk")

    assert ids(body) == [oat_milk, milk]
    assert body["total"] == 2


@pytest.mark.parametrize("pattern", ["%", "_", "50%_off"])
async def test_q_treats_like_wildcards_literally(
    client: Client, auth: dict[str, str], pattern: str
) -> None:
    literal = await create(client, auth, "get 50%_off now")
    await create(client, auth, "plain title")

    body = await listing(client, auth, f"?q={pattern.replace('%', '%25')}")

    assert ids(body) == [literal]


async def test_filters_combine(client: Client, auth: dict[str, str]) -> None:
    wanted = await create(client, auth, "report", done=True)
    await create(client, auth, "report", done=False)
    await create(client, auth, "other", done=True)

    body = await listing(client, auth, "?done=true&q=rep")

    assert ids(body) == [wanted]


async def test_every_sort_order(client: Client, auth: dict[str, str], seven: list[int]) -> None:
    titles = dict(zip(seven, ["b", "a", "d", "c", "f", "e", "g"], strict=True))
    await client.patch(f"/api/tasks/{seven[2]}", json={"done": True}, headers=auth)

    orders = {
        sort: ids(await listing(client, auth, f"?sort={sort}"))
        for sort in (
            "id_desc",
            "id_asc",
            "created_desc",
            "created_asc",
            "updated_desc",
            "title_asc",
        )
    }

    assert orders["id_asc"] == seven
    assert orders["id_desc"] == seven[::-1]
    assert orders["created_asc"] == seven
    assert orders["created_desc"] == seven[::-1]
    assert orders["updated_desc"] == [seven[2], *[i for i in seven[::-1] if i != seven[2]]]
    assert orders["title_asc"] == sorted(seven, key=titles.__getitem__)


async def test_links_keep_the_query_and_name_every_neighbour(
    client: Client, auth: dict[str, str], seven: list[int]
) -> None:
    body = await listing(client, auth, "?page=2&page_size=1&sort=id_asc&done=false")

    links = body["link"]
    assert {rel: link["page"] for rel, link in links.items()} == {
        "first": ["1"],
        "prev": ["1"],
        "next": ["3"],
        "last": ["4"],
    }
    for link in links.values():
        assert link["page_size"] == ["1"]
        assert link["sort"] == ["id_asc"]
        assert link["done"] == ["false"]


async def test_first_and_last_pages_have_no_prev_and_no_next(
    client: Client, auth: dict[str, str], seven: list[int]
) -> None:
    first = await listing(client, auth, "?page_size=5")
    last = await listing(client, auth, "?page_size=5&page=2")

    assert set(first["link"]) == {"first", "next", "last"}
    assert set(last["link"]) == {"first", "prev", "last"}


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("?page=abc", "page"),
        ("?page=0", "page"),
        ("?page=-1", "page"),
        ("?page=1.5", "page"),
        ("?page_size=abc", "page_size"),
        ("?done=maybe", "done"),
        ("?sort=bogus", "sort"),
        ("?sort=id_desc&sort=id_asc", "sort"),
        ("?q=" + "x" * 201, "q"),
        ("?colour=red", "colour"),
    ],
)
async def test_malformed_query_is_a_validation_error(
    client: Client, auth: dict[str, str], query: str, field: str
) -> None:
    response = await client.get(f"/api/tasks{query}", headers=auth)

    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["code"] == "validation_error"
    assert [detail["loc"][0] for detail in error["details"]] == [field]


async def test_pages_reach_offset_10000_by_default(client: Client, auth: dict[str, str]) -> None:
    deepest = await client.get("/api/tasks?page=501&page_size=20", headers=auth)  # offset 10,000
    past = await client.get("/api/tasks?page=502&page_size=20", headers=auth)

    assert deepest.status_code == 200
    assert past.status_code == 400
    assert (await past.get_json())["error"]["code"] == "validation_error"

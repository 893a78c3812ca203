"""Tests of `tasks/store/session.py` and `web/pagination.py`.

How deep offset pages reach, and how far a search's total is counted."""

from __future__ import annotations

from pathlib import Path

import pytest

from quart_tasks import config as settings
from tests.helpers.apps import settings_for_test
from tests.helpers.support import Client
from tests.tasks.test_tasks_list import create, ids, listing

MAX_OFFSET = 4
SEARCH_TOTAL_LIMIT = 3


@pytest.fixture
def config(tmp_path: Path) -> settings.TestingConfig:
    return settings_for_test(
        tmp_path, LIST_MAX_OFFSET=MAX_OFFSET, LIST_SEARCH_TOTAL_LIMIT=SEARCH_TOTAL_LIMIT
    )


@pytest.fixture
async def seven(client: Client, auth: dict[str, str]) -> list[int]:
    """Seven tasks, five of them titled with "match" (two of those done)."""
    titles = ["match a", "other b", "match c", "MATCH d", "other e", "match f", "match g"]
    return [await create(client, auth, title, done=n in (0, 5)) for n, title in enumerate(titles)]


async def test_a_page_past_the_maximum_offset_is_refused_and_points_to_cursors(
    client: Client, auth: dict[str, str], seven: list[int]
) -> None:
    deepest = await listing(client, auth, "?page=3&page_size=2")  # offset 4
    response = await client.get("/api/tasks?page=4&page_size=2", headers=auth)  # offset 6

    assert ids(deepest) == seven[::-1][4:6]
    assert response.status_code == 400
    error = (await response.get_json())["error"]
    assert error["code"] == "validation_error"
    assert "cursor" in error["message"]
    assert error["details"] == [
        {"loc": ["page"], "message": "at most 3 at page_size 2; use cursor to go deeper"}
    ]


async def test_links_reach_only_pages_within_the_maximum_offset(
    client: Client, auth: dict[str, str], seven: list[int]
) -> None:
    first = await listing(client, auth, "?page_size=2")
    deepest = await listing(client, auth, "?page=3&page_size=2")

    # Seven tasks make four pages of two, but the fourth starts at offset 6.
    assert {rel: link["page"] for rel, link in first["link"].items()} == {
        "first": ["1"],
        "next": ["2"],
    }
    assert {rel: link["page"] for rel, link in deepest["link"].items()} == {
        "first": ["1"],
        "prev": ["2"],
    }


async def test_cursors_walk_past_the_maximum_offset(
    client: Client, auth: dict[str, str], seven: list[int]
) -> None:
    walked, cursor = [], ""
    while cursor is not None:
        response = await client.get(
            "/api/tasks", query_string={"cursor": cursor, "page_size": 2}, headers=auth
        )
        body = await response.get_json()
        walked += ids(body)
        cursor = body["next_cursor"]

    assert walked == seven[::-1]


async def test_a_search_counts_up_to_its_limit_then_gives_a_lower_bound(
    client: Client, auth: dict[str, str], seven: list[int]
) -> None:
    many = await listing(client, auth, "?q=match&page_size=2")
    done = await listing(client, auth, "?q=match&done=true")

    assert (many["total"], many["total_exact"]) == (SEARCH_TOTAL_LIMIT, False)
    assert ids(many) == [seven[6], seven[5]]
    # The last page is not known: no `last`, but a `next` while more may follow.
    assert set(many["link"]) == {"first", "next"}
    assert (done["total"], done["total_exact"]) == (2, True)
    assert ids(done) == [seven[5], seven[0]]
    assert set(done["link"]) == {"first", "last"}


async def test_a_search_at_its_limit_is_exact(
    client: Client, auth: dict[str, str], seven: list[int]
) -> None:
    body = await listing(client, auth, "?q=match&done=false")  # three open matches

    assert (body["total"], body["total_exact"]) == (SEARCH_TOTAL_LIMIT, True)
    assert ids(body) == [seven[6], seven[3], seven[2]]


async def test_unfiltered_and_done_totals_are_exact_whatever_the_search_limit(
    client: Client, auth: dict[str, str], seven: list[int]
) -> None:
    everything = await listing(client, auth)
    open_tasks = await listing(client, auth, "?done=false")

    assert (everything["total"], everything["total_exact"]) == (7, True)
    assert (open_tasks["total"], open_tasks["total_exact"]) == (5, True)

"""Tests of `tasks/store/task_json.py`.

A list page is sent as written by PostgreSQL (`task_json`) or, on SQLite, by pydantic:
byte for byte what `TaskPage` writes, whatever its titles hold."""

from __future__ import annotations

import json
from typing import Any

from quart_tasks.tasks.schemas import TaskOut, TaskPage
from quart_tasks.web.pagination import PageRequest, Total
from tests.helpers.support import Client

TITLES = [
    'a "quoted" title',
    "back\\slash and /slash",
    "line\nbreak\ttab\rreturn",
    "control \x01 \x1f and \x7f",
    "accents é ü ß, CJK 漢字, emoji 😀",
    "<html> & 'apostrophes'",
]


async def test_a_page_is_byte_for_byte_what_its_schema_writes(
    client: Client, auth: dict[str, str]
) -> None:
    for n, title in enumerate(TITLES):
        body = {"title": title, "done": n % 2 == 0}
        assert (await client.post("/api/tasks", json=body, headers=auth)).status_code == 201

    response = await client.get("/api/tasks?page=1&page_size=4&sort=id_asc", headers=auth)
    sent = await response.get_data()

    assert response.status_code == 200
    assert response.content_type == "application/json"
    parsed: dict[str, Any] = json.loads(sent)
    assert [item["title"] for item in parsed["items"]] == TITLES[:4]
    written = TaskPage(
        items=[TaskOut.model_validate(item) for item in parsed["items"]],
        page=1,
        page_size=4,
        total=len(TITLES),
        total_exact=True,
    )
    assert sent == written.model_dump_json().encode()


async def test_an_empty_page_is_what_its_schema_writes(
    client: Client, auth: dict[str, str]
) -> None:
    response = await client.get("/api/tasks?q=nothing-holds-this", headers=auth)

    expected = TaskPage(items=[], page=1, page_size=20, total=0, total_exact=True)
    assert await response.get_data() == expected.model_dump_json().encode()


def test_json_around_written_items_is_the_schemas() -> None:
    item = TaskOut.model_validate(
        {
            "id": 7,
            "title": "x",
            "done": True,
            "created_at": "2026-12-07T10:00:00Z",
            "updated_at": "2026-12-07T10:00:01.5Z",
        }
    )
    total = Total(1000, exact=False)
    request = PageRequest(page=3, page_size=1)

    written = TaskPage.json_with("[" + item.model_dump_json() + "]", request, total)

    assert written == TaskPage.of([item], request, total).model_dump_json()

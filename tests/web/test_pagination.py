"""The `Link` header of offset pages, written exactly as urlencode writes each link."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlencode

import pytest

from quart_tasks.web.pagination import PageRequest, Total, link_header


def expected(path: str, params: dict[str, Any], pages: dict[str, int], page_size: int) -> str:
    return ", ".join(
        f'<{path}?{urlencode({**params, "page": page, "page_size": page_size})}>; rel="{rel}"'
        for rel, page in pages.items()
    )


@pytest.mark.parametrize(
    "params",
    [
        {},
        {"sort": "title_asc"},
        {"q": "a b&c=d/é", "done": False, "owner": "*"},
    ],
)
def test_links_carry_the_other_parameters_as_urlencode_writes_them(params: dict[str, Any]) -> None:
    header = link_header("/api/tasks", params, PageRequest(page=3, page_size=10), Total(95))

    pages = {"first": 1, "prev": 2, "next": 4, "last": 10}
    assert header == expected("/api/tasks", params, pages, 10)


def test_an_inexact_total_and_a_reach_leave_out_what_is_not_known() -> None:
    request = PageRequest(page=1, page_size=20)
    header = link_header("/api/tasks", {"q": "x"}, request, Total(1000, exact=False), 10_000)

    assert header == expected("/api/tasks", {"q": "x"}, {"first": 1, "next": 2}, 20)

"""Offset pagination as the tutorial defines it, bounded in depth, and its RFC 8288 `Link`
header.

An offset page costs what it skips: the database reads every row before it.
Pages therefore reach only so deep (`LIST_MAX_OFFSET`, 10,000 rows by default,
as Elasticsearch's `max_result_window`); past it a keyset walk (`cursor`)
costs the same at any depth.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from math import ceil
from typing import Any, Generic, Self, TypeVar, get_args
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

from quart_tasks.web.errors import APIError

MIN_PAGE_SIZE = 1
MAX_PAGE_SIZE = 100
DEFAULT_PAGE_SIZE = 20
MAX_PAGE = 1_000_000_000


def clamp_page_size(page_size: int) -> int:
    return max(MIN_PAGE_SIZE, min(page_size, MAX_PAGE_SIZE))


def _without_default(schema: JsonDict) -> None:
    schema.pop("default", None)


class PageQuery(BaseModel):
    """`page` and `page_size`, for every list; lists add their own filters."""

    model_config = ConfigDict(extra="forbid")

    page: int = Field(
        default=1,
        ge=1,
        le=MAX_PAGE,
        description="From 1 (the first, when left out). Not with `cursor`.",
        # Undocumented as a default: generated clients send every default they know,
        # and a page sent with a cursor is refused.
        json_schema_extra=_without_default,
    )
    page_size: int = Field(default=DEFAULT_PAGE_SIZE, description="Clamped to 1-100.")

    @field_validator("page_size")
    @classmethod
    def _clamp(cls, value: int) -> int:
        return clamp_page_size(value)

    def page_request(self) -> PageRequest:
        return PageRequest(page=self.page, page_size=self.page_size)

    def link_params(self) -> dict[str, Any]:
        """The other query parameters, for the links to carry along."""
        return self.model_dump(exclude_unset=True, exclude={"page", "page_size", "cursor"})


Item = TypeVar("Item", bound=BaseModel)


@dataclass(frozen=True, slots=True)
class Total:
    """How many items match: exactly, or at least `count` when counting stopped there."""

    count: int
    exact: bool = True


class OffsetPage(BaseModel, Generic[Item]):
    """A page by number: `total` counts every match, or is a lower bound where
    `total_exact` is false."""

    items: list[Item]
    page: int
    page_size: int
    total: int
    total_exact: bool = Field(
        description="False when counting stopped at a limit: `total` is then a lower bound, "
        "and the `Link` header has no `last`."
    )

    @classmethod
    def of(cls, rows: Iterable[Any], request: PageRequest, total: Total) -> Self:
        """The page of `rows` (ORM objects), each read into the item model."""
        (item_model,) = get_args(cls.model_fields["items"].annotation)
        return cls(
            items=[item_model.model_validate(row) for row in rows],
            page=request.page,
            page_size=request.page_size,
            total=total.count,
            total_exact=total.exact,
        )

    @classmethod
    def json_with(cls, items_json: str, request: PageRequest, total: Total) -> str:
        """The page's JSON around `items_json`, its items' JSON array written already:
        what `of(...).model_dump_json()` writes, field for field."""
        empty = cls.of([], request, total).model_dump_json()
        if not empty.startswith(EMPTY_ITEMS_JSON):
            raise TypeError(f"{cls.__name__}'s JSON does not start with its items")
        return '{"items":' + items_json + empty.removeprefix(EMPTY_ITEMS_JSON)


EMPTY_ITEMS_JSON = '{"items":[]'
"""How a page's JSON starts when it has no items (`items` is its first field)."""


class PageHeaders(BaseModel):
    link: str | None = Field(
        default=None,
        description="RFC 8288 links: first, prev, next, last. A keyset page has only next, "
        "and the last one none.",
    )


@dataclass(frozen=True, slots=True)
class PageRequest:
    page: int
    page_size: int

    @property
    def offset(self) -> int:
        return (self.page - 1) * self.page_size

    def deepest_page(self, max_offset: int) -> int:
        """The last page whose offset is within `max_offset`."""
        return max_offset // self.page_size + 1


def within_reach(request: PageRequest, max_offset: int) -> PageRequest:
    """`request`, unless its offset lies past `max_offset`: then 400, pointing to cursors."""
    if request.offset > max_offset:
        raise APIError(
            400,
            "validation_error",
            f"page {request.page} starts at offset {request.offset}, past the deepest a page "
            f"reaches ({max_offset}); walk further with cursor= (keyset pages)",
            details=[
                {
                    "loc": ["page"],
                    "message": f"at most {request.deepest_page(max_offset)} "
                    f"at page_size {request.page_size}; use cursor to go deeper",
                }
            ],
        )
    return request


def link_header(
    path: str,
    params: Mapping[str, Any],
    request: PageRequest,
    total: Total,
    max_offset: int | None = None,
) -> str:
    """`first`, `prev`, `next` and `last` links that keep every other query parameter.

    Only pages within `max_offset` are linked. `last` is left out where it is not
    known (an inexact total) or out of reach."""
    known = total.count if total.exact else total.count + 1
    last = max(1, ceil(known / request.page_size))
    reach = last if max_offset is None else min(last, request.deepest_page(max_offset))
    pages = {"first": 1}
    if total.exact and last == reach:
        pages["last"] = last
    if request.page > 1:
        pages["prev"] = min(request.page - 1, reach)
    if request.page < reach:
        pages["next"] = request.page + 1
    # The other parameters are encoded once; each link adds its page and the page size,
    # as urlencode({**params, "page": ..., "page_size": ...}) would write them.
    carried = urlencode({name: value for name, value in params.items() if name not in PAGING})
    prefix = f"{path}?{carried}&" if carried else f"{path}?"
    return ", ".join(
        f'<{prefix}page={pages[rel]}&page_size={request.page_size}>; rel="{rel}"'
        for rel in ("first", "prev", "next", "last")
        if rel in pages
    )


PAGING = frozenset({"page", "page_size"})


def next_link(path: str, params: Mapping[str, Any], page_size: int) -> str:
    """The `Link` of a keyset page: only `next` can be known."""
    return f'<{path}?{urlencode({**params, "page_size": page_size})}>; rel="next"'

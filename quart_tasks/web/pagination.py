"""Offset pagination as the tutorial defines it, and its RFC 8288 `Link` header."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from math import ceil
from typing import Any, Generic, Self, TypeVar, get_args
from urllib.parse import urlencode

from pydantic import BaseModel, ConfigDict, Field, field_validator
from pydantic.config import JsonDict

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


class OffsetPage(BaseModel, Generic[Item]):
    """A page by number: `total` counts every match."""

    items: list[Item]
    page: int
    page_size: int
    total: int

    @classmethod
    def of(cls, rows: Iterable[Any], request: PageRequest, total: int) -> Self:
        """The page of `rows` (ORM objects), each read into the item model."""
        (item_model,) = get_args(cls.model_fields["items"].annotation)
        return cls(
            items=[item_model.model_validate(row) for row in rows],
            page=request.page,
            page_size=request.page_size,
            total=total,
        )


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


def link_header(path: str, params: Mapping[str, Any], request: PageRequest, total: int) -> str:
    """`first`, `prev`, `next` and `last` links that keep every other query parameter."""
    last = max(1, ceil(total / request.page_size))
    pages = {"first": 1, "last": last}
    if request.page > 1:
        pages["prev"] = min(request.page - 1, last)
    if request.page < last:
        pages["next"] = request.page + 1
    links = []
    for rel in ("first", "prev", "next", "last"):
        if rel in pages:
            query = urlencode({**params, "page": pages[rel], "page_size": request.page_size})
            links.append(f'<{path}?{query}>; rel="{rel}"')
    return ", ".join(links)


def next_link(path: str, params: Mapping[str, Any], page_size: int) -> str:
    """The `Link` of a keyset page: only `next` can be known."""
    return f'<{path}?{urlencode({**params, "page_size": page_size})}>; rel="next"'

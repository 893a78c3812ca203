"""What the tasks routes accept and return."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    RootModel,
    StrictBool,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
    field_validator,
    model_validator,
)
from pydantic.config import JsonDict

from quart_tasks.auth.models import USERNAME_MAX_LENGTH
from quart_tasks.tasks.models import TITLE_MAX_LENGTH
from quart_tasks.web.pagination import OffsetPage, PageQuery
from quart_tasks.web.text import NoNul
from quart_tasks.web.timestamps import Timestamp

Title = Annotated[
    StrictStr,
    StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH),
    NoNul,
]
TITLE_SCHEMA = {"type": "string", "minLength": 1, "maxLength": TITLE_MAX_LENGTH}

SortOrder = Literal["id_desc", "id_asc", "created_desc", "created_asc", "updated_desc", "title_asc"]
TRUTHY = ("true", "1", "yes")
DoneFilter = Annotated[
    Literal["true", "false", "1", "0", "yes", "no"],
    BeforeValidator(lambda value: value.lower() if isinstance(value, str) else value),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


TASK: JsonDict = {
    "id": 42,
    "title": "Write the docs",
    "done": False,
    "created_at": "2026-12-06T09:30:00.123456Z",
    "updated_at": "2026-12-06T09:45:00.654321Z",
}


class TaskCreate(Strict):
    model_config = ConfigDict(json_schema_extra={"examples": [{"title": "Write the docs"}]})

    title: Title
    done: StrictBool = False


class TaskReplace(Strict):
    model_config = ConfigDict(
        json_schema_extra={"examples": [{"title": "Write the docs", "done": True}]}
    )

    title: Title
    done: StrictBool


class TaskPatch(Strict):
    """Any of the fields; those left out keep their value. `null` is not a value."""

    model_config = ConfigDict(json_schema_extra={"examples": [{"done": True}]})

    title: Annotated[Title | None, WithJsonSchema(TITLE_SCHEMA)] = None
    done: Annotated[StrictBool | None, WithJsonSchema({"type": "boolean"})] = None

    @field_validator("title", "done", mode="before")
    @classmethod
    def _reject_null(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("must not be null")
        return value

    def changes(self) -> dict[str, Any]:
        return self.model_dump(exclude_unset=True)


class TaskListQuery(PageQuery):
    done: DoneFilter | None = None
    sort: SortOrder = "id_desc"
    q: Annotated[str, NoNul] | None = Field(
        default=None,
        max_length=TITLE_MAX_LENGTH,
        description="Case-insensitive title substring. Its `total` is counted up to "
        "`LIST_SEARCH_TOTAL_LIMIT` matches (1,000 by default); past that, `total_exact` "
        "is false.",
    )

    owner: Annotated[str, NoNul] | None = Field(
        default=None,
        max_length=USERNAME_MAX_LENGTH,
        description="Admins only: a username, or `*` for every owner. Default: the caller.",
    )
    cursor: str | None = Field(
        default=None,
        max_length=1024,
        description="Keyset mode instead of `page`: empty for the first page, then `next_cursor`.",
    )

    @model_validator(mode="after")
    def _one_paging_mode(self) -> TaskListQuery:
        if self.cursor is not None and "page" in self.model_fields_set:
            raise ValueError("give either page or cursor, not both")
        return self

    @property
    def done_filter(self) -> bool | None:
        return None if self.done is None else self.done in TRUTHY


class TaskOut(BaseModel):
    """A task."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [TASK]})

    id: int
    title: str
    done: bool
    created_at: Timestamp
    updated_at: Timestamp


class TaskPage(OffsetPage[TaskOut]):
    """A page of tasks."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"items": [TASK], "page": 1, "page_size": 20, "total": 1, "total_exact": True}
            ]
        }
    )


class TaskCursorPage(BaseModel):
    """A page of a keyset walk: follow `next_cursor` (null on the last page)."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [{"items": [TASK], "page_size": 20, "next_cursor": "eyJpZCI6NDJ9.c2ln"}]
        }
    )

    items: list[TaskOut]
    page_size: int
    next_cursor: str | None


class TaskListing(RootModel[TaskPage | TaskCursorPage]):
    """A page by number (with `total`), or a keyset page (with `next_cursor`)."""


class SyncQuery(BaseModel):
    model_config = ConfigDict(extra="forbid")

    token: str | None = Field(
        default=None,
        max_length=1024,
        description="The `next_token` of the previous answer; none to sync from scratch.",
    )
    page_size: int = Field(default=500, ge=1, le=1000, description="Tasks and deletions a page.")
    owner: Annotated[str, NoNul] | None = Field(
        default=None,
        max_length=USERNAME_MAX_LENGTH,
        description="Admins only: a username, or `*` for every owner. Default: the caller.",
    )


class SyncPage(BaseModel):
    """A page of a sync: call again with `next_token` while `has_more`; keep the last
    page's `next_token` for the next sync."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "tasks": [TASK],
                    "deleted": [17],
                    "full_sync": False,
                    "has_more": False,
                    "next_token": "eyJwb3NpdGlvbiI6OTl9.c2ln",
                }
            ]
        }
    )

    tasks: list[TaskOut] = Field(description="Tasks created or changed, each in its latest state.")
    deleted: list[int] = Field(description="Ids of tasks deleted since the token.")
    full_sync: bool = Field(description="True when this sync lists every task (no token).")
    has_more: bool
    next_token: str


class TaskHeaders(BaseModel):
    etag: str = Field(description="The task's version; send it back in If-Match.")


class CreatedHeaders(TaskHeaders):
    location: str = Field(description="The new task's URL.")
    idempotent_replayed: Literal["true"] | None = Field(
        default=None, description="Present when this answers a retry of an earlier request."
    )


class ReadHeaders(BaseModel):
    if_none_match: str | None = Field(
        default=None, description="An ETag: 304 Not Modified while the task still has it."
    )


class WriteHeaders(BaseModel):
    if_match: str | None = Field(
        default=None,
        description="An ETag (or `*`): the change happens only while the task still has it, "
        "else 412.",
    )


class CreateHeaders(BaseModel):
    idempotency_key: str | None = Field(
        default=None,
        max_length=255,
        description="Retries with the same key and body get the first response (24 h).",
    )

"""What the tasks routes accept and return."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictStr,
    StringConstraints,
    WithJsonSchema,
    field_validator,
)

from ..pagination import PageQuery
from ..timestamps import Timestamp
from ..users.models import USERNAME_MAX_LENGTH
from .models import TITLE_MAX_LENGTH

Title = Annotated[
    StrictStr, StringConstraints(strip_whitespace=True, min_length=1, max_length=TITLE_MAX_LENGTH)
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


class TaskCreate(Strict):
    title: Title
    done: StrictBool = False


class TaskReplace(Strict):
    title: Title
    done: StrictBool


class TaskPatch(Strict):
    """Any of the fields; those left out keep their value. `null` is not a value."""

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
    q: str | None = Field(
        default=None, max_length=TITLE_MAX_LENGTH, description="Case-insensitive title substring."
    )

    owner: str | None = Field(
        default=None,
        max_length=USERNAME_MAX_LENGTH,
        description="Admins only: a username, or `*` for every owner. Default: the caller.",
    )

    @property
    def done_filter(self) -> bool | None:
        return None if self.done is None else self.done in TRUTHY


class TaskOut(BaseModel):
    """A task."""

    model_config = ConfigDict(from_attributes=True)

    id: int
    title: str
    done: bool
    created_at: Timestamp
    updated_at: Timestamp


class TaskPage(BaseModel):
    """A page of tasks."""

    items: list[TaskOut]
    page: int
    page_size: int
    total: int


class CreatedHeaders(BaseModel):
    location: str = Field(description="The new task's URL.")

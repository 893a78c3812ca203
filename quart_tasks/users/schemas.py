"""What the users routes accept and return."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictStr, StringConstraints
from pydantic.config import JsonDict

from quart_tasks.auth.models import USERNAME_MAX_LENGTH
from quart_tasks.auth.passwords import MAX_PASSWORD_LENGTH, MIN_PASSWORD_LENGTH
from quart_tasks.web.pagination import OffsetPage, PageQuery
from quart_tasks.web.timestamps import Timestamp

Username = Annotated[
    StrictStr,
    StringConstraints(pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$", max_length=USERNAME_MAX_LENGTH),
    Field(description="Letters, digits, '.', '_' and '-'; unique whatever the case."),
]
Password = Annotated[
    StrictStr,
    StringConstraints(min_length=MIN_PASSWORD_LENGTH, max_length=MAX_PASSWORD_LENGTH),
    Field(description=f"{MIN_PASSWORD_LENGTH} to {MAX_PASSWORD_LENGTH} characters."),
]


USER: JsonDict = {
    "id": 2,
    "username": "alice",
    "role": "user",
    "created_at": "2026-12-06T09:30:00.123456Z",
}


class UserCreate(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"username": "alice", "password": "correct horse"}]},
    )

    username: Username
    password: Password


class UserOut(BaseModel):
    """A user. The password is never returned."""

    model_config = ConfigDict(from_attributes=True, json_schema_extra={"examples": [USER]})

    id: int
    username: str
    role: Literal["user", "admin"]
    created_at: Timestamp


class UserListQuery(PageQuery):
    pass


class UserPage(OffsetPage[UserOut]):
    """A page of users."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {"items": [USER], "page": 1, "page_size": 20, "total": 1, "total_exact": True}
            ]
        }
    )

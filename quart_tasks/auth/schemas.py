from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StrictStr, StringConstraints

from quart_tasks.web.text import NoNul

Credential = Annotated[StrictStr, StringConstraints(min_length=1, max_length=1024), NoNul]


class LoginRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    username: Credential
    password: Credential


class RefreshRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    refresh_token: Annotated[StrictStr, StringConstraints(min_length=1, max_length=1024)]


class TokenResponse(BaseModel):
    """An access token, and the refresh token that gets the next one."""

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str

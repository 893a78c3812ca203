from __future__ import annotations

from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, StrictStr, StringConstraints

from quart_tasks.web.text import NoNul

Credential = Annotated[StrictStr, StringConstraints(min_length=1, max_length=1024), NoNul]


class LoginRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"username": "alice", "password": "correct horse"}]},
    )

    username: Credential
    password: Credential


class RefreshRequest(BaseModel):
    model_config = ConfigDict(
        extra="forbid",
        json_schema_extra={"examples": [{"refresh_token": "kI3tH8yq0c6Q8tEJ2t1n2Vw4"}]},
    )

    refresh_token: Annotated[StrictStr, StringConstraints(min_length=1, max_length=1024)]


class TokenResponse(BaseModel):
    """An access token, and the refresh token that gets the next one."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "access_token": "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiIxIn0.c2ln",
                    "token_type": "Bearer",
                    "expires_in": 3600,
                    "refresh_token": "kI3tH8yq0c6Q8tEJ2t1n2Vw4",
                }
            ]
        }
    )

    access_token: str
    token_type: Literal["Bearer"] = "Bearer"
    expires_in: int
    refresh_token: str
